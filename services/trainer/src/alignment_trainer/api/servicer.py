"""alignment.v1.Trainer over gRPC: request validation and proto <-> record translation around jobs/manager.py's
JobManager.

Error mapping (client errors apart from server errors, as callers retry only the latter):
    INVALID_ARGUMENT     a spec or request field is wrong; the message starts with the field's path
                         (``spec.preference.beta: must be > 0, got -1``), and google.rpc.BadRequest details in
                         the grpc-status-details-bin trailer name it too (api/bad_request.py)
    ALREADY_EXISTS       StartJob with a job_id that names a job with a different spec, or a new job whose
                         spec.output_uri is taken: a file, a directory with files, another live job's output,
                         an s3:// output already published (its manifest.json there)
    NOT_FOUND            unknown job_id
    UNAVAILABLE          WatchJob while the trainer shuts down (the job resumes when it restarts)
A job that fails while running is not an RPC error: it is a Job in state FAILED with ``error`` saying why.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2

from alignment_trainer import objectstore, tracing
from alignment_trainer.api import jobspec
from alignment_trainer.api.contracts import common_pb2, trainer_pb2, trainer_pb2_grpc
from alignment_trainer.config import JobConfig
from alignment_trainer.jobs.manager import JobManager, ShuttingDown
from alignment_trainer.jobs.store import JobNotFound, JobRecord, JobState
from alignment_trainer.training import runner

JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PAGE_TOKEN_PATTERN = re.compile(r"[0-9]{1,18}")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def parse_stored_spec(spec: bytes, default_output_dir: Path, default_dro_address: str) -> JobConfig:
    """The JobManager's spec parser: a stored JobSpec (bytes) -> JobConfig."""
    return jobspec.parse_job_spec(trainer_pb2.JobSpec.FromString(spec), default_output_dir=default_output_dir,
                                  default_dro_address=default_dro_address)


# RPC worker threads a WatchJob stream may never take: health checks and unary calls always find one (issue 12: 16
# open WatchJob streams starved Health/Check and GetJob, and the liveness probe restarted the trainer mid-job).
RESERVED_WORKERS = 8


def watcher_slots(max_workers: int) -> int:
    """How many WatchJob streams a server with max_workers RPC threads serves at once: all but RESERVED_WORKERS
    threads (all but half of them on a server with fewer than 2 * RESERVED_WORKERS)."""
    return max(1, max_workers - min(RESERVED_WORKERS, max_workers // 2))


def _output_taken(output_dir: Path, manager: JobManager) -> str | None:
    """Why a new job may not write into ``output_dir``, or None (issue 12: the trainer never overwrites an artifact that
    is not its own). A job's manifest lists every file of its output directory, so the directory must be new or empty
    and no other job that has not ended may be writing there. A retried StartJob of the same job never gets here (its
    job_id finds the job), and a job resumed after a restart writes into its own directory again."""
    real = os.path.realpath(output_dir)
    for rec in manager.store.in_states([JobState.PENDING, JobState.RUNNING]):
        if os.path.realpath(rec.output_dir) == real:
            return f"{output_dir} is the output directory of job {rec.job_id!r} ({rec.state.name})"
    if output_dir.exists() and not output_dir.is_dir():
        return f"{output_dir} exists and is not a directory; it is not replaced"
    if output_dir.is_dir() and any(output_dir.iterdir()):
        return (f"{output_dir} already holds files (a job's manifest lists every file in its output directory, so it "
                "must start empty); they are not overwritten")
    return None


def _s3_output_taken(uri: str, manager: JobManager) -> str | None:
    """The s3:// counterpart of :func:`_output_taken`: no other unfinished job publishes to ``uri``, and nothing is
    published there yet (a directory's manifest.json, or an object at the key): outputs are never replaced."""
    for rec in manager.store.in_states([JobState.PENDING, JobState.RUNNING]):
        if trainer_pb2.JobSpec.FromString(rec.spec).output_uri.strip().rstrip("/") == uri:
            return f"{uri} is the output of job {rec.job_id!r} ({rec.state.name})"
    try:
        objectstore.check_unpublished(uri, "spec.output_uri")
    except objectstore.ObjectStoreError as err:
        if err.kind != "exists":
            raise jobspec.InvalidSpec("spec.output_uri", str(err)) from err
        return str(err)
    return None


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    def __init__(self, manager: JobManager, max_watchers: int = watcher_slots(16),
                 dro_solver_allowlist: set[str] | None = None) -> None:
        self.manager = manager
        # Issue 12: the caller chose the address the trainer connects to (server-side request forgery).
        self.dro_solver_allowlist = dro_solver_allowlist if dro_solver_allowlist is not None else {manager.default_dro_address}
        self.max_watchers = max_watchers
        self._watch_slots = threading.BoundedSemaphore(max_watchers)
        self._watchers_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._open_watchers = 0

    @property
    def open_watchers(self) -> int:
        """WatchJob streams being served now."""
        with self._watchers_lock:
            return self._open_watchers

    def _count_watcher(self, delta: int) -> None:
        with self._watchers_lock:
            self._open_watchers += delta

    def StartJob(self, request: trainer_pb2.StartJobRequest, context: grpc.ServicerContext):
        job_id = request.job_id or uuid.uuid4().hex
        if not JOB_ID_PATTERN.fullmatch(job_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"job_id: must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit, "
                          f"got {_shown(job_id)}")
        if not request.HasField("spec"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "spec: required")
        # Idempotency first: a retried StartJob must get its job back even if, say, its output dir now has files.
        try:
            existing = self.manager.get(job_id)
        except JobNotFound:
            existing = None
        if existing is not None:
            if trainer_pb2.JobSpec.FromString(existing.spec) != request.spec:
                context.abort(grpc.StatusCode.ALREADY_EXISTS,
                              f"job_id: {_shown(job_id)} already names a job with a different spec")
            return trainer_pb2.StartJobResponse(job=to_proto(existing))
        named = request.spec.preference.dro_solver_address if request.spec.HasField("preference") else ""
        if named and named not in self.dro_solver_allowlist:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"spec.preference.dro_solver_address: {_shown(named)} is not a DroSolver this trainer may call "
                          "(DRO_SOLVER_ADDRESS or TRAINER_DRO_SOLVER_ALLOWLIST); leave it empty for the trainer's own")
        queued = len(self.manager.store.in_states([JobState.PENDING]))
        if queued >= max_queued_jobs():
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"StartJob: {queued} jobs are waiting, the most this trainer queues (TRAINER_MAX_QUEUED_JOBS); "
                          "retry once some have run")
        try:
            config = jobspec.parse_job_spec(request.spec, default_output_dir=self.manager.default_output_dir(job_id),
                                            default_dro_address=self.manager.default_dro_address)
        except jobspec.PathNotAllowed as err:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
        except jobspec.InvalidSpec as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        # Checked and recorded under one lock: two new jobs naming one empty directory cannot both pass.
        with self._start_lock:
            try:
                taken = (_s3_output_taken(config.publish_uri, self.manager) if config.publish_uri else
                         _output_taken(config.output_dir, self.manager) if request.spec.output_uri else None)
            except jobspec.InvalidSpec as err:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
            if taken:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"spec.output_uri: {taken}")
            # The active span is this call's SERVER span (tracing.ServerInterceptor): the job's span becomes its child.
            record, created = self.manager.submit(job_id, request.spec.SerializeToString(), config,
                                                  trace_context=tracing.inject_current())
        if not created and trainer_pb2.JobSpec.FromString(record.spec) != request.spec:
            # A concurrent StartJob with the same job_id won the insert.
            context.abort(grpc.StatusCode.ALREADY_EXISTS,
                          f"job_id: {_shown(job_id)} already names a job with a different spec")
        return trainer_pb2.StartJobResponse(job=to_proto(record))

    def WatchJob(self, request: trainer_pb2.WatchJobRequest, context: grpc.ServicerContext):
        _require_job_id(request.job_id, context)
        if not self._watch_slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"WatchJob: {self.max_watchers} streams are open, the most this trainer serves "
                          "(the RPC threads less those kept for health and unary calls); retry later, or poll GetJob")
        self._count_watcher(+1)
        try:
            for event in self.manager.watch(request.job_id, context.is_active):
                if isinstance(event, runner.StepReport):
                    yield trainer_pb2.WatchJobResponse(step=trainer_pb2.TrainingStep(
                        step=event.step, total_steps=event.total_steps, loss=event.loss,
                        metrics=_floats(event.metrics), tokens_per_second=event.tokens_per_second,
                        eta_seconds=event.eta_seconds))
                else:
                    yield trainer_pb2.WatchJobResponse(job=to_proto(event))
        except JobNotFound:
            context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {_shown(request.job_id)}")
        except ShuttingDown as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        finally:
            self._count_watcher(-1)
            self._watch_slots.release()

    def GetJob(self, request: trainer_pb2.GetJobRequest, context: grpc.ServicerContext):
        return trainer_pb2.GetJobResponse(job=to_proto(self._get(request.job_id, context)))

    def ListJobs(self, request: trainer_pb2.ListJobsRequest, context: grpc.ServicerContext):
        size = request.page_size or DEFAULT_PAGE_SIZE
        if size > MAX_PAGE_SIZE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size: must be <= {MAX_PAGE_SIZE}, got {size}")
        after = 0
        if request.page_token:
            # ASCII digits only, at most 18 (a SQLite integer): str.isdigit() also admits '²', which int() refuses.
            if not PAGE_TOKEN_PATTERN.fullmatch(request.page_token):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              "page_token: not a token from a previous ListJobs response")
            after = int(request.page_token)
        records = self.manager.store.list(after_seq=after, limit=size + 1)
        page, more = records[:size], len(records) > size
        return trainer_pb2.ListJobsResponse(jobs=[to_proto(r) for r in page],
                                            next_page_token=str(page[-1].seq) if more else "")

    def CancelJob(self, request: trainer_pb2.CancelJobRequest, context: grpc.ServicerContext):
        self._get(request.job_id, context)
        return trainer_pb2.CancelJobResponse(job=to_proto(self.manager.cancel(request.job_id)))

    def _get(self, job_id: str, context: grpc.ServicerContext) -> JobRecord:
        _require_job_id(job_id, context)
        try:
            return self.manager.get(job_id)
        except JobNotFound:
            context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {_shown(job_id)}")


def max_queued_jobs() -> int:
    """Jobs that may wait for the worker at once: TRAINER_MAX_QUEUED_JOBS, default 64 (issue 12: a job queue limit)."""
    raw = os.environ.get("TRAINER_MAX_QUEUED_JOBS", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else 64


def _shown(value: str, limit: int = 160) -> str:
    """A caller's value quoted in a status message, cut to `limit` characters: the whole of a 1 MiB id does not fit
    in the trailers, and the client would wait for its deadline instead of getting the status (issue 12)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value) - limit} more characters)"


def _require_job_id(job_id: str, context: grpc.ServicerContext) -> None:
    if not job_id:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "job_id: required")


# ------------------------------------------------------------------------------------------------ record -> proto


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _artifact(info: dict | None) -> common_pb2.ArtifactRef | None:
    if not info:
        return None
    uri = info.get("uri") or Path(info["path"]).resolve().as_uri()
    return common_pb2.ArtifactRef(uri=uri, sha256=info["sha256"], size_bytes=info["size_bytes"])


def _floats(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def to_proto(rec: JobRecord) -> trainer_pb2.Job:
    p = rec.progress
    outputs = trainer_pb2.JobOutputs()
    if rec.outputs.get("hf_checkpoint"):
        outputs.model.hf_checkpoint.CopyFrom(_artifact(rec.outputs["hf_checkpoint"]))
    if rec.outputs.get("onnx"):
        outputs.model.onnx.CopyFrom(_artifact(rec.outputs["onnx"]))
    if rec.outputs.get("manifest"):
        outputs.manifest.CopyFrom(_artifact(rec.outputs["manifest"]))
    if rec.outputs.get("metrics"):
        outputs.metrics.CopyFrom(_artifact(rec.outputs["metrics"]))
    return trainer_pb2.Job(
        job_id=rec.job_id,
        spec=trainer_pb2.JobSpec.FromString(rec.spec),
        state=int(rec.state),
        progress=common_pb2.Progress(done=int(p.get("done", 0)), total=int(p.get("total", 0)), unit="steps",
                                     tokens_per_second=float(p.get("tokens_per_second", 0.0)),
                                     eta_seconds=float(p.get("eta_seconds", 0.0))),
        metrics=_floats(rec.metrics),
        outputs=outputs,
        error=rec.error,
        created_at=_timestamp(rec.created_at),
        updated_at=_timestamp(rec.updated_at),
        resume_count=rec.resume_count,
        last_checkpoint_step=rec.last_checkpoint_step,
    )


__all__ = ["TrainerServicer", "parse_stored_spec", "to_proto"]
