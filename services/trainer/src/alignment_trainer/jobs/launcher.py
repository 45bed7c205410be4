"""TRAINER_LAUNCH=accelerate: the service runs each job as an ``accelerate launch`` subprocess of the CLI (cli.py)
instead of in its worker thread, and follows it through the files the CLI writes (layout.py).

    accelerate launch --config_file $TRAINER_ACCELERATE_CONFIG --num_processes $TRAINER_NUM_PROCESSES \
        -m alignment_trainer.cli run --spec <work>/spec.json --output <output_dir> --work-dir <work>/launch

Progress: every new line of ``metrics.jsonl`` becomes a StepReport (with total steps, throughput and ETA from
``progress.json``); the outcome is ``result.json``. The job's trace continues in the subprocess (TRACEPARENT).
CancelJob and a graceful shutdown terminate the launch (SIGTERM, then SIGKILL after a grace period); a job stopped by
a shutdown is queued again, and its next launch (same ``<work>/launch``) resumes from the newest resumable checkpoint
there when the spec sets checkpoint_every_steps (accelerate's save_state, job.py), else starts over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from google.protobuf import json_format

from alignment_trainer import tracing
from alignment_trainer.api.contracts import trainer_pb2
from alignment_trainer.config import JobConfig
from alignment_trainer.jobs.layout import PROGRESS_FILE, RESULT_FILE
from alignment_trainer.training import export, runner

POLL_S = 0.25
TERMINATE_GRACE_S = 10.0


class LaunchFailed(RuntimeError):
    """The launched job failed or its launcher died; the message has the job's error or the output's tail."""


def launch_command(spec_path: Path, output: Path, launch_dir: Path, *, config_file: str | None,
                   num_processes: int) -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file:
        cmd += ["--config_file", config_file]
    cmd += ["--num_processes", str(num_processes), "-m", "alignment_trainer.cli", "run", "--spec", str(spec_path),
            "--output", str(output), "--work-dir", str(launch_dir)]
    return cmd


def run_job_launched(config: JobConfig, spec: bytes, work_dir: Path, hooks: runner.RunHooks, *,
                     config_file: str | None, num_processes: int, dro_address: str) -> runner.RunOutputs:
    work_dir = Path(work_dir)
    launch_dir = work_dir / "launch"
    launch_dir.mkdir(parents=True, exist_ok=True)
    for stale in (PROGRESS_FILE, RESULT_FILE):
        (launch_dir / stale).unlink(missing_ok=True)
    spec_path = work_dir / "spec.json"
    spec_path.write_text(json_format.MessageToJson(trainer_pb2.JobSpec.FromString(spec)))
    env = {**os.environ, "DRO_SOLVER_ADDRESS": dro_address,
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                     os.environ.get("PYTHONPATH", "")) if p)}
    headers = tracing.inject_current()
    env.pop("TRACEPARENT", None)
    env.pop("TRACESTATE", None)
    env.update({k.upper(): v for k, v in headers.items()})
    cmd = launch_command(spec_path, config.output_dir, launch_dir, config_file=config_file,
                         num_processes=num_processes)
    output: deque[str] = deque(maxlen=100)
    log_path = launch_dir / "launch.log"
    with open(log_path, "wb") as log_fh:
        proc = subprocess.Popen(cmd, env=env, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _follow(proc, config, launch_dir, hooks)
        finally:
            if proc.poll() is None:
                _terminate(proc)
    result_path = launch_dir / RESULT_FILE
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    if proc.returncode != 0 or result is None or result.get("state") != "SUCCEEDED":
        output.extend(log_path.read_text(errors="replace").splitlines()[-40:])
        reason = result.get("error") if result else "\n".join(output)
        raise LaunchFailed(f"accelerate launch exited with {proc.returncode}: {reason}")
    outs = result["outputs"]

    def info(d):
        return None if d is None else export.ArtifactInfo(path=Path(d["path"]), sha256=d["sha256"],
                                                          size_bytes=d["size_bytes"])

    return runner.RunOutputs(hf_checkpoint=info(outs["hf_checkpoint"]), manifest=info(outs["manifest"]),
                             metrics=info(outs["metrics"]), onnx=info(outs["onnx"]),
                             final_metrics=result.get("final_metrics", {}), total_steps=result["total_steps"])


def _follow(proc: subprocess.Popen, config: JobConfig, launch_dir: Path, hooks: runner.RunHooks) -> None:
    metrics_path = Path(config.output_dir) / runner.METRICS_FILE
    offset = 0
    started = False
    while True:
        if hooks.should_stop():
            _terminate(proc)
            raise runner.JobCancelled("cancelled while running under accelerate launch")
        if hooks.should_suspend():
            _terminate(proc)
            raise runner.JobSuspended(0)
        progress = _read_json(launch_dir / PROGRESS_FILE) or {}
        if metrics_path.is_file():
            with open(metrics_path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            offset += len(complete)
            for line in complete.decode().splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                total = int(progress.get("total_steps", 0)) or row["step"]
                if not started:
                    hooks.on_start(0, total)
                    started = True
                metrics = {k: float(v) for k, v in row.items() if k != "step"}
                hooks.on_step(runner.StepReport(
                    step=int(row["step"]), total_steps=total, loss=float(row["loss"]), metrics=metrics,
                    tokens_per_second=float(progress.get("tokens_per_second", 0.0)),
                    eta_seconds=float(progress.get("eta_seconds", 0.0))))
        if proc.poll() is not None:
            return
        time.sleep(POLL_S)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM to the launcher's process group (the launcher and its workers), SIGKILL after a grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


__all__ = ["LaunchFailed", "launch_command", "run_job_launched"]
