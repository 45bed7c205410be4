"""How a caller follows and steers a training job (runner.run_job): the hooks it passes, the StepReport it gets
after every optimizer step, the outputs of a finished job and where they are written, and the ways a job stops
early. Shared by runner.py and job.py; callers import these names from runner.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from alignment_trainer.training import export

# The job's output directory (config.output_dir).
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoint"
ONNX_DIR = "onnx"


class JobCancelled(Exception):
    """Raised by run_job when RunHooks.should_stop() turned true; the run stopped between two steps."""


class JobSuspended(Exception):
    """Raised by run_job when RunHooks.should_suspend() turned true (the trainer is shutting down): the steps done
    so far are in a resumable checkpoint of step ``step`` (0 = none was needed: no step had been done)."""

    def __init__(self, step: int) -> None:
        self.step = step
        super().__init__(f"suspended at step {step}")


class TrainingDiverged(RuntimeError):
    """Raised when a step's loss or gradient norm is not finite (usually: the learning rate is too high)."""


@dataclass(frozen=True)
class StepReport:
    """What a watcher sees after each optimizer step (trainer.proto TrainingStep)."""

    step: int  # 1-based number of optimizer steps done
    total_steps: int
    loss: float
    metrics: dict[str, float]
    tokens_per_second: float  # non-padding tokens through the policy per second, since this process started the run
    eta_seconds: float


@dataclass
class RunHooks:
    """How the caller follows and steers a run; every hook runs on the training thread."""

    on_step: Callable[[StepReport], None] = lambda report: None
    # Called after a resumable checkpoint of that step is completely on disk.
    on_checkpoint: Callable[[int], None] = lambda step: None
    should_stop: Callable[[], bool] = lambda: False
    # Checked before every step too: true means "checkpoint what is done and stop" (graceful shutdown).
    should_suspend: Callable[[], bool] = lambda: False
    # Called once the run knows its length (after loading data), before the first step.
    on_start: Callable[[int, int], None] = lambda start_step, total_steps: None


@dataclass(frozen=True)
class RunOutputs:
    hf_checkpoint: export.ArtifactInfo
    manifest: export.ArtifactInfo
    metrics: export.ArtifactInfo
    onnx: export.ArtifactInfo | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)
    total_steps: int = 0
    resumed_from_step: int = 0


__all__ = [
    "CHECKPOINT_DIR",
    "JobCancelled",
    "JobSuspended",
    "METRICS_FILE",
    "ONNX_DIR",
    "RunHooks",
    "RunOutputs",
    "StepReport",
    "TrainingDiverged",
]
