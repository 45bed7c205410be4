"""A training job's experiment logs besides metrics.jsonl (the main process only; job.py drives it):

  * TensorBoard event files in the job's output directory, beside metrics.jsonl (``torch.utils.tensorboard``),
    one scalar per metric per optimizer step under the names transformers' TensorBoard callback gives TRL's
    metrics: ``train/loss``, ``train/rewards/chosen``, ``train/logps/rejected``, ``train/learning_rate``,
    ``train/grad_norm``, … (``train/`` + the metrics.jsonl name); ``eval/…`` names and the trainer's own
    ``spa/…`` and ``dro/…`` families keep theirs, as the coordinator's round metrics do. ``tensorboard --logdir``
    on the output directory (or any directory above it) shows them.
  * MLflow, only when ``MLFLOW_TRACKING_URI`` is set: the job's hyperparameters as params and every step's metrics
    (MLflow's own names: ``/`` is allowed). mlflow is not a dependency of the trainer; with the variable set and
    the package missing the job fails at its start with an error naming the variable.

Each attempt of a job writes one event file and removes the earlier attempts' files: a resumed job first writes
again the steps metrics.jsonl kept up to its checkpoint, so each step appears once, in order. (Keeping the old
file and purging with SummaryWriter's purge_step is not enough: TensorBoard reads a directory's event files in the
order of their names, and the name's per-process counter sorts "10" before "9" in a long-lived trainer process,
so the resumed attempt's steps could be read before the first attempt's.)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from alignment_trainer.config import JobConfig

MLFLOW_ENV = "MLFLOW_TRACKING_URI"
EVENTS_GLOB = "events.out.tfevents.*"
_OWN_FAMILIES = ("train/", "eval/", "spa/", "dro/")


def tensorboard_tag(name: str) -> str:
    """The TensorBoard tag of a metrics.jsonl name (``rewards/chosen`` → ``train/rewards/chosen``)."""
    return name if name.startswith(_OWN_FAMILIES) else f"train/{name}"


def _job_params(config: JobConfig) -> dict[str, str]:
    params = {f"hparams.{k}": str(v) for k, v in dataclasses.asdict(config.hparams).items()}
    params["kind"] = config.kind
    task = config.task
    for name in ("loss", "beta", "eval_fraction"):
        if hasattr(task, name):
            params[name] = str(getattr(task, name))
    return params


class ExperimentLog:
    """TensorBoard events (always) and MLflow (with MLFLOW_TRACKING_URI) for one job in ``out``."""

    def __init__(self, config: JobConfig, out: Path, kept_steps: list[dict[str, float]]) -> None:
        """``kept_steps``: the metrics.jsonl lines an earlier attempt left (``{"step": n, **metrics}``), logged again."""
        self._mlflow = None
        uri = os.environ.get(MLFLOW_ENV, "")
        if uri:
            try:
                import mlflow  # noqa: PLC0415 - optional: only with MLFLOW_TRACKING_URI
            except ImportError as err:
                raise ValueError(f"{MLFLOW_ENV} is set ({uri!r}) but the mlflow package is not installed in the "
                                 f"trainer's environment; install mlflow there or unset {MLFLOW_ENV}") from err
            mlflow.set_tracking_uri(uri)
            mlflow.start_run(run_name=out.name)
            mlflow.log_params(_job_params(config))
            self._mlflow = mlflow
        from torch.utils.tensorboard import SummaryWriter

        for old in out.glob(EVENTS_GLOB):
            old.unlink()
        self._writer = SummaryWriter(log_dir=str(out))
        for line in kept_steps:
            metrics = {name: value for name, value in line.items() if name != "step"}
            self.log(int(line["step"]), metrics)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(tensorboard_tag(name), value, global_step=step)
        self._writer.flush()
        if self._mlflow is not None:
            self._mlflow.log_metrics(metrics, step=step)

    def close(self) -> None:
        self._writer.close()
        if self._mlflow is not None:
            self._mlflow.end_run()
            self._mlflow = None


__all__ = ["EVENTS_GLOB", "MLFLOW_ENV", "ExperimentLog", "tensorboard_tag"]
