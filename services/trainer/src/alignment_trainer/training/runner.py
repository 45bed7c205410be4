"""The training loop of one job: SFT (docs/algorithm.md §2, the π_init of the rounds) or preference optimisation with
one of the losses of §1 and §3-§5, from a config.JobConfig. No gRPC here: jobs/manager.py drives ``run_job`` in a
worker thread through RunHooks, jobs/cli.py under ``accelerate launch``, and tests call it directly. The job itself is
job.py's TrainingJob; this module is the training package's entry point and names everything its callers use.

What a run does:
  1. Loads (and sha256-checks) its inputs; tokenises the data (chat template on the prompt, EOS after the
     response); drops examples whose prompt alone fills max_length (counted) and truncates over-long responses
     from the end (counted, ``data/truncated``).
  2. Builds the policy (a Llama from an ArchitectureConfig, seeded; or a checkpoint) and, for preference jobs, the
     frozen reference (log-probs under no_grad once per micro-batch, objectives.py).
  3. Runs ``total_steps`` optimizer steps: length-grouped batches (data.py) split into micro-batches for gradient
     accumulation, AdamW (no weight decay on norms, as transformers' Trainer), gradient clipping, a
     cosine/linear/constant schedule with linear warm-up, bf16 autocast on CUDA only. After every step: one line in
     ``metrics.jsonl`` (TRL's names: loss, grad_norm, learning_rate, epoch, num_tokens, rewards/*, logps/*,
     logits/*; spa/flagged_frac, spa/tau; dro/value, dro/lambda_star, dro/moved_frac, …; dro/per_round_* with the
     per-round adversary of docs/algorithm.md §7) and a StepReport to the hooks; cancellation is checked before
     every step.
  4. Every ``checkpoint_every_steps`` steps writes a resumable checkpoint (model, optimizer, scheduler, RNG, step,
     self-refinement window, counters, metrics.jsonl length) to ``<work_dir>/resume/step-N`` through a temp dir and
     a rename, keeping only the newest (with several processes: accelerate's save_state of every process, then the
     same rename; checkpoints.py). ``run_job`` resumes from it when one exists: the batch order depends only on
     (seed, epoch), so the resumed run replays exactly the steps it had not done.
  5. Writes the outputs (export.py): Hugging Face checkpoint, optional ONNX export, manifest; then removes the
     resume checkpoints (they hold the optimizer state, several times the model's size).
"""

from __future__ import annotations

from pathlib import Path

import torch

from alignment_trainer.config import JobConfig
from alignment_trainer.training.adversary import ConnectAdversary
from alignment_trainer.training.checkpoints import RESUME_DIR, latest_checkpoint
from alignment_trainer.training.job import TrainingJob
from alignment_trainer.training.lifecycle import (
    CHECKPOINT_DIR,
    METRICS_FILE,
    ONNX_DIR,
    JobCancelled,
    JobSuspended,
    RunHooks,
    RunOutputs,
    StepReport,
    TrainingDiverged,
)


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def run_job(config: JobConfig, work_dir: Path, hooks: RunHooks | None = None, *,
            device: torch.device | None = None, accelerator=None,
            connect_adversary: ConnectAdversary | None = None) -> RunOutputs | None:
    """Runs (or resumes) the job to completion and returns its outputs. Raises JobCancelled, TrainingDiverged,
    data.DatasetError, export.ArtifactMismatch, whatever ``connect_adversary``'s adversary raises (the DroSolver
    client's DroSolverUnavailable), or whatever else went wrong. W-DRO jobs need ``connect_adversary``: it is called
    with the job's dro_solver_address and gives the adversary of the objectives (adversary.py).

    ``accelerator`` (an accelerate.Accelerator, from jobs/cli.py under ``accelerate launch``) runs the job data-parallel
    over its processes (DDP or FSDP, as its config says): the model, optimizer and scheduler go through
    ``accelerator.prepare``, the reference model through ``prepare_model(evaluation_mode=True)``; each process takes
    a disjoint share of every micro-batch (collective.shard); the preference losses gather the per-pair values they
    couple and take the main process's solution (distributed_objective.py), so the gradient is the single-process
    one over the union batch; gradients flow through ``accelerator.backward``; step metrics are gathered from every
    process; resumable checkpoints go through ``accelerator.save_state``/``load_state``; only the main process writes
    metrics.jsonl and the outputs (a full Hugging Face checkpoint from ``accelerator.get_state_dict``). The other
    processes return None. Without one (the gRPC service's worker thread) the job runs in this process on
    ``device``."""
    if accelerator is not None and accelerator.num_processes == 1:
        device, accelerator = accelerator.device, None  # one process: the plain path, resumable checkpoints included
    job = TrainingJob(config, Path(work_dir), hooks or RunHooks(), device or default_device(), accelerator,
                      connect_adversary)
    try:
        return job.train()
    finally:
        job.close()


__all__ = [
    "CHECKPOINT_DIR",
    "METRICS_FILE",
    "ONNX_DIR",
    "RESUME_DIR",
    "JobCancelled",
    "JobSuspended",
    "RunHooks",
    "RunOutputs",
    "StepReport",
    "TrainingDiverged",
    "default_device",
    "latest_checkpoint",
    "run_job",
]
