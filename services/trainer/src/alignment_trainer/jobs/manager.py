"""The trainer's job lifecycle: a durable queue in front of training.runner.run_job, one job at a time, with no gRPC
service here (api/servicer.py translates to and from alignment.v1). W-DRO jobs get the DroSolver gRPC client
(api/dro_client.py) as their adversary.

    manager = JobManager(data_dir, default_dro_address="localhost:50054")
    manager.recover()            # once at startup: resume or report what a previous process left RUNNING
    manager.start()              # the worker thread
    record, created = manager.submit(job_id, spec_bytes, config)
    for event in manager.watch(job_id, is_active):  ...   # StepReport …, then the final JobRecord
    manager.cancel(job_id)
    manager.begin_shutdown(); manager.join(timeout)

Guarantees (trainer.proto: "Jobs are recorded durably"):
  * A job is in the store (jobs.sqlite3) before StartJob answers; every state change is an atomic store transition.
  * On startup, a job found RUNNING resumes from its newest resumable checkpoint (resume_count + 1) or, with none,
    becomes INTERRUPTED with the reason and what was saved. A job found PENDING is queued again. Nothing is dropped.
  * On a graceful shutdown the running job stops at the next step boundary after writing a resumable checkpoint, and
    stays RUNNING in the store, so the next process resumes it without losing a step.

Per-job files live under ``<data_dir>/jobs/<job_id>/``: ``output/`` (the default output directory) and ``resume/``
(resumable checkpoints, removed when the job succeeds). Once an s3:// output_uri is published, the checkpoint and
ONNX export leave ``output/`` (manifest and metrics stay); a job whose publishing failed keeps everything.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from alignment_trainer import objectstore, tracing
from alignment_trainer.api.dro_client import DroSolverClient, DroSolverUnavailable
from alignment_trainer.config import JobConfig, PreferenceTask
from alignment_trainer.jobs.store import TERMINAL_STATES, InvalidTransition, JobRecord, JobState, JobStore
from alignment_trainer.training import runner
from alignment_trainer.training.data import DatasetError
from alignment_trainer.training.export import ArtifactInfo, ArtifactMismatch, file_info

log = logging.getLogger("alignment_trainer.jobs")

# A watcher joining late is replayed at most this many of the newest steps (older ones are in metrics.jsonl).
WATCH_HISTORY_STEPS = 10_000
# Step histories of ended jobs kept for watchers still reading them; older ones are dropped (their watchers get the
# final Job, and metrics.jsonl has every step).
WATCH_FINISHED_JOBS_KEPT = 8
# The store's progress/metrics are written at most this often during a run (plus at checkpoints and at the end):
# GetJob never lags by more, and a job with fast tiny steps does not fsync the database hundreds of times a second.
PROGRESS_WRITE_INTERVAL_S = 1.0
# How often a waiting watcher re-checks whether its client is still there.
_WATCH_POLL_S = 0.5

# Errors that mean "the job as specified cannot succeed": shown to the user as they are, without a traceback.
_USER_ERRORS = (DatasetError, ArtifactMismatch, runner.TrainingDiverged, ValueError, OSError)


class ShuttingDown(RuntimeError):
    """Raised by watch() when the trainer is stopping; the job itself resumes when the trainer restarts."""


@dataclass
class _Events:
    """Steps of a job's current run in this process, for watchers."""

    steps: deque
    first_index: int = 0  # index (0-based, within this run) of steps[0]
    finished: bool = False


class JobManager:
    def __init__(self, data_dir: str | Path, *, default_dro_address: str,
                 parse_spec: Callable[[bytes, Path, str], JobConfig], launch: str = "inprocess",
                 accelerate_config: str | None = None, num_processes: int = 1) -> None:
        """``parse_spec(spec_bytes, default_output_dir, default_dro_address)`` turns a stored spec into a JobConfig
        (api/jobspec.py parse_job_spec on the decoded proto); it runs again when a job is resumed after a restart."""
        self.data_dir = Path(data_dir)
        self.store = JobStore(self.data_dir)
        self.default_dro_address = default_dro_address
        self._parse_spec = parse_spec
        if launch not in ("inprocess", "accelerate"):
            raise ValueError(f"TRAINER_LAUNCH must be inprocess or accelerate, got {launch!r}")
        # "accelerate": each job is an `accelerate launch` subprocess of jobs/cli.py (launcher.py).
        self.launch = launch
        self.accelerate_config = accelerate_config
        self.num_processes = num_processes
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._cond = threading.Condition()
        self._events: dict[str, _Events] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- paths ---------------------------------------------------------------------------------------------------

    def work_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    def default_output_dir(self, job_id: str) -> Path:
        return self.work_dir(job_id) / "output"

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def recover(self) -> None:
        """Settles what a previous process left behind (see module doc). Call once, before start()."""
        for rec in self.store.in_states([JobState.RUNNING]):
            if rec.cancel_requested:
                self.store.transition(rec.job_id, JobState.CANCELLED, allowed_from=[JobState.RUNNING],
                                      error="cancelled (the trainer stopped before the job reached a step boundary)")
                continue
            latest = runner.latest_checkpoint(self.work_dir(rec.job_id))
            if latest is not None:
                step, _ = latest
                self.store.transition(rec.job_id, JobState.PENDING, allowed_from=[JobState.RUNNING],
                                      resume_count=rec.resume_count + 1, last_checkpoint_step=step)
                log.info("job will resume from its checkpoint",
                         extra={"fields": {"job_id": rec.job_id, "step": step, "resume_count": rec.resume_count + 1}})
            else:
                self._interrupt(rec)
        for rec in self.store.in_states([JobState.PENDING]):
            self._queue.put(rec.job_id)

    def _interrupt(self, rec: JobRecord) -> None:
        done, total = rec.progress.get("done", 0), rec.progress.get("total", 0)
        outputs = {}
        metrics_path = Path(rec.output_dir) / runner.METRICS_FILE
        saved = "nothing"
        if metrics_path.is_file() and metrics_path.stat().st_size:
            outputs["metrics"] = _info_dict(file_info(metrics_path))
            saved = f"the per-step metrics in {metrics_path}"
        if rec.last_checkpoint_step:
            why = (f"its step-{rec.last_checkpoint_step} checkpoint is gone from "
                   f"{self.work_dir(rec.job_id) / runner.RESUME_DIR}")
        else:
            why = f"before this job wrote a resumable checkpoint ({self._checkpoint_cadence(rec)})"
        error = (f"interrupted: the trainer process stopped (last recorded progress: step {done} of {total}) {why}; "
                 f"nothing to resume from. Saved: {saved}. Start it again under a new job_id.")
        self.store.transition(rec.job_id, JobState.INTERRUPTED, allowed_from=[JobState.RUNNING], error=error,
                              outputs=outputs)
        log.warning("job interrupted without a checkpoint", extra={"fields": {"job_id": rec.job_id}})

    def _checkpoint_cadence(self, rec: JobRecord) -> str:
        try:
            every = self._parse_spec(rec.spec, self.default_output_dir(rec.job_id),
                                     self.default_dro_address).hparams.checkpoint_every_steps
        except Exception:  # its inputs may be gone by now; the cadence only makes the message more helpful
            return "spec.hparams.checkpoint_every_steps unknown"
        return "spec.hparams.checkpoint_every_steps: " + (f"every {every} steps" if every else "only at the end")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._worker, name="trainer-worker", daemon=True)
        self._thread.start()

    def begin_shutdown(self) -> None:
        """Asks the running job to checkpoint and stop at the next step boundary; wakes every watcher."""
        self._stopping.set()
        self._queue.put(None)
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the worker to stop; False if it is still running after ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        self.store.close()

    # -- requests ------------------------------------------------------------------------------------------------

    def submit(self, job_id: str, spec: bytes, config: JobConfig,
               trace_context: dict[str, str] | None = None) -> tuple[JobRecord, bool]:
        """Records a PENDING job and queues it; an existing job_id returns the existing record (created False).
        trace_context (W3C headers of the submitting call) parents the job's span, in this process or a later one."""
        record, created = self.store.create(job_id, spec, str(config.output_dir), trace_context)
        if created:
            self._queue.put(job_id)
            log.info("job queued", extra={"fields": {"job_id": job_id, "kind": config.kind}})
        return record, created

    def get(self, job_id: str) -> JobRecord:
        return self.store.get(job_id)

    def cancel(self, job_id: str) -> JobRecord:
        """PENDING -> CANCELLED at once; a RUNNING job is asked to stop before its next step (the record says
        cancel_requested until the worker confirms); an ended job is returned unchanged."""
        try:
            return self.store.transition(job_id, JobState.CANCELLED, allowed_from=[JobState.PENDING],
                                         error="cancelled before it started")
        except InvalidTransition:
            pass
        rec = self.store.get(job_id)
        if rec.state == JobState.RUNNING:
            rec = self.store.update(job_id, cancel_requested=True)
            with self._cond:
                event = self._cancel.get(job_id)
            if event is not None:
                event.set()
        return rec

    def watch(self, job_id: str, is_active: Callable[[], bool]) -> Iterator[runner.StepReport | JobRecord]:
        """Yields the job's StepReports (this run's, replayed from the start up to WATCH_HISTORY_STEPS) as they
        happen, then the final JobRecord once the job has ended. Raises ShuttingDown when the trainer stops first,
        JobNotFound for an unknown id. Returns early (without the record) when is_active() turns false."""
        self.store.get(job_id)  # JobNotFound before anything is streamed
        next_index = 0
        while True:
            with self._cond:
                ev = self._events.get(job_id)
                new: list[runner.StepReport] = []
                if ev is not None:
                    next_index = max(next_index, ev.first_index)
                    new = list(ev.steps)[next_index - ev.first_index:]
                    next_index += len(new)
                finished = ev is not None and ev.finished
            yield from new
            if new:
                continue
            rec = self.store.get(job_id)
            if rec.state in TERMINAL_STATES and (ev is None or finished):
                yield rec
                return
            if self._stopping.is_set():
                raise ShuttingDown("the trainer is shutting down; the job resumes from its checkpoint on restart")
            if not is_active():
                return
            with self._cond:
                self._cond.wait(_WATCH_POLL_S)

    # -- the worker ----------------------------------------------------------------------------------------------

    def _worker(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                break
            try:
                self._run(job_id)
            except Exception:  # a bug in the bookkeeping must not kill the worker and strand the queue
                log.exception("worker error", extra={"fields": {"job_id": job_id}})

    def _run(self, job_id: str) -> None:
        try:
            rec = self.store.transition(job_id, JobState.RUNNING, allowed_from=[JobState.PENDING])
        except InvalidTransition:
            return  # cancelled while queued
        cancel = threading.Event()
        with self._cond:
            self._cancel[job_id] = cancel
            finished = [j for j, ev in self._events.items() if ev.finished]  # in the order the jobs ran
            for old in finished[:max(0, len(finished) - WATCH_FINISHED_JOBS_KEPT)]:
                del self._events[old]
            self._events[job_id] = _Events(steps=deque(maxlen=WATCH_HISTORY_STEPS))
        last_write = [0.0]

        def on_start(start_step: int, total: int) -> None:
            self.store.update(job_id, progress={**rec.progress, "done": start_step, "total": total})

        def on_step(report: runner.StepReport) -> None:
            with self._cond:
                ev = self._events[job_id]
                if len(ev.steps) == ev.steps.maxlen:
                    ev.first_index += 1
                ev.steps.append(report)
                self._cond.notify_all()
            now = time.monotonic()
            if now - last_write[0] >= PROGRESS_WRITE_INTERVAL_S or report.step == report.total_steps:
                last_write[0] = now
                self.store.update(job_id, progress=_progress(report), metrics=report.metrics)

        def on_checkpoint(step: int) -> None:
            self.store.update(job_id, last_checkpoint_step=step)

        def should_stop() -> bool:
            return cancel.is_set()

        def should_suspend() -> bool:
            return self._stopping.is_set()

        hooks = runner.RunHooks(on_step=on_step, on_checkpoint=on_checkpoint, should_stop=should_stop,
                                should_suspend=should_suspend, on_start=on_start)
        log.info("job started", extra={"fields": {"job_id": job_id, "resume_count": rec.resume_count}})
        span = None
        token = None
        try:
            config = self._parse_spec(rec.spec, self.default_output_dir(job_id), self.default_dro_address)
            parent = tracing.context_from(rec.trace_context)
            attributes = {"trainer.job_id": job_id, "trainer.job_kind": config.kind,
                          "trainer.resume_count": rec.resume_count}
            if isinstance(config.task, PreferenceTask):
                attributes["trainer.loss"] = config.task.loss
            span = tracing.tracer().start_span(f"trainer.job {config.kind}", context=parent, attributes=attributes)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            if self.launch == "accelerate":
                from alignment_trainer.jobs import launcher

                outputs = launcher.run_job_launched(config, rec.spec, self.work_dir(job_id), hooks,
                                                    config_file=self.accelerate_config,
                                                    num_processes=self.num_processes,
                                                    dro_address=self.default_dro_address)
            else:
                outputs = runner.run_job(config, self.work_dir(job_id), hooks, connect_adversary=DroSolverClient)
            if config.publish_uri:
                # An s3:// output_uri: the outputs go up, manifest last (objectstore.put_directory); a failure fails the job.
                objectstore.publish(config.output_dir, config.publish_uri, "spec.output_uri")
                _drop_published_models(outputs)
        except runner.JobSuspended as err:
            if err.step:
                # Stays RUNNING on purpose: the next process finds it and resumes from the checkpoint just written.
                self.store.update(job_id, last_checkpoint_step=err.step)
            else:
                # No step was done: nothing is lost by starting over, so it simply waits in the queue again.
                self.store.transition(job_id, JobState.PENDING, allowed_from=[JobState.RUNNING])
            log.info("job suspended for shutdown", extra={"fields": {"job_id": job_id, "step": err.step}})
        except runner.JobCancelled as err:
            self._end(job_id, JobState.CANCELLED, error=str(err))
        except DroSolverUnavailable as err:
            # Issue 12 (npm run chaos): the solver was down or stopped past the client's retries. Nothing is wrong
            # with the job: INTERRUPTED (the caller may run it again: the coordinator resumes the run by itself),
            # not FAILED, which ended the whole run for a solver that was back seconds later.
            log.warning("job interrupted: the DroSolver is unavailable", extra={"fields": {"job_id": job_id, "error": str(err)}})
            self._end(job_id, JobState.INTERRUPTED, error=f"{type(err).__name__}: {err}")
        except _USER_ERRORS as err:
            log.warning("job failed", exc_info=True, extra={"fields": {"job_id": job_id, "error": str(err)}})
            self._end(job_id, JobState.FAILED, error=f"{type(err).__name__}: {err}")
        except Exception as err:
            log.exception("job failed with an internal error", extra={"fields": {"job_id": job_id}})
            self._end(job_id, JobState.FAILED, error=f"internal error: {type(err).__name__}: {err}")
        else:
            progress = {"done": outputs.total_steps, "total": outputs.total_steps, "eta_seconds": 0.0}
            with self._cond:
                steps = self._events[job_id].steps
                if steps:
                    progress = {**_progress(steps[-1]), "eta_seconds": 0.0}
            self._end(job_id, JobState.SUCCEEDED, outputs=_outputs_dict(outputs, config), metrics=outputs.final_metrics,
                      progress=progress, error="")
            log.info("job succeeded", extra={"fields": {"job_id": job_id, "steps": outputs.total_steps}})
        finally:
            if token is not None:
                otel_context.detach(token)
            if span is not None:
                state = self.store.get(job_id).state
                span.set_attribute("trainer.state", state.name)
                if state in (JobState.FAILED, JobState.INTERRUPTED):
                    span.set_status(Status(StatusCode.ERROR, self.store.get(job_id).error[:500]))
                span.end()
            with self._cond:
                self._cancel.pop(job_id, None)
                if job_id in self._events:
                    self._events[job_id].finished = True
                self._cond.notify_all()

    def _end(self, job_id: str, state: JobState, **updates) -> None:
        try:
            self.store.transition(job_id, state, allowed_from=[JobState.RUNNING], **updates)
        except InvalidTransition:
            log.error("job left RUNNING behind the worker's back", extra={"fields": {"job_id": job_id}})


def _drop_published_models(outputs: runner.RunOutputs) -> None:
    """The bucket holds a published job's models (GetJob names them): a 7B round's tens of GB are not kept twice."""
    for info in (outputs.hf_checkpoint, outputs.onnx):
        if info is not None and Path(info.path).is_dir():
            shutil.rmtree(info.path)


def _progress(report: runner.StepReport) -> dict:
    return {"done": report.step, "total": report.total_steps, "tokens_per_second": report.tokens_per_second,
            "eta_seconds": report.eta_seconds, "loss": report.loss}


def _info_dict(info: ArtifactInfo, config: JobConfig | None = None) -> dict:
    """An output as stored; "uri" is its s3:// location when the job published its outputs there."""
    out = {"path": str(info.path), "sha256": info.sha256, "size_bytes": info.size_bytes}
    if config is not None and config.publish_uri:
        out["uri"] = f"{config.publish_uri}/{Path(info.path).relative_to(config.output_dir).as_posix()}"
    return out


def _outputs_dict(outputs: runner.RunOutputs, config: JobConfig) -> dict:
    out = {"hf_checkpoint": _info_dict(outputs.hf_checkpoint, config), "manifest": _info_dict(outputs.manifest, config),
           "metrics": _info_dict(outputs.metrics, config)}
    if outputs.onnx is not None:
        out["onnx"] = _info_dict(outputs.onnx, config)
    return out


__all__ = ["JobManager", "ShuttingDown", "WATCH_HISTORY_STEPS"]
