"""Durable job records in SQLite: what a restarted trainer needs to resume or report every job it accepted.

One row per job: the spec (serialized alignment.v1.JobSpec; the store does not interpret it), state, progress,
latest metrics, last resumable checkpoint step, error, outputs, resume count and timestamps. Every state change is
one transaction that also checks the state it leaves (``UPDATE … WHERE state IN (allowed)``), so two threads can
never both move a job (e.g. a cancel racing the worker's "succeeded"): the loser gets InvalidTransition.

The database lives at ``<data_dir>/jobs.sqlite3`` in WAL mode (readers never block the training thread's
per-step progress writes) with the default synchronous=FULL, so an acknowledged transition survives a crash.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable


class JobState(enum.IntEnum):
    """Mirrors alignment.v1.JobState (common.proto) number for number, so the service converts by value."""

    PENDING = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5
    INTERRUPTED = 6


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED})

# The lifecycle. RUNNING -> PENDING is the restart path: a job found RUNNING with a checkpoint is queued again
# to resume from it. INTERRUPTED is terminal for this trainer (the contract has no resume RPC); what was saved
# stays listed in its outputs.
ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED,
                                 JobState.PENDING}),
}


class JobNotFound(KeyError):
    """Raised when no job has the given id."""


class InvalidTransition(RuntimeError):
    """Raised when a job is not in a state from which the requested transition is allowed (someone else moved it
    first, or it has already ended)."""


@dataclass
class JobRecord:
    job_id: str
    spec: bytes
    state: JobState
    output_dir: str
    created_at: float
    updated_at: float
    # Progress of the run: steps done / total, throughput and ETA (see common.proto Progress).
    progress: dict[str, Any] = field(default_factory=dict)
    # Latest optimizer step's metrics (TRL names).
    metrics: dict[str, float] = field(default_factory=dict)
    # Output artifacts by role ("hf_checkpoint", "onnx", "manifest", "metrics"): {"uri", "sha256", "size_bytes"}.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""
    resume_count: int = 0
    last_checkpoint_step: int = 0
    # Set by CancelJob while the job runs; the worker stops at the next step boundary. Durable so a restart
    # does not resume a job its user asked to stop.
    cancel_requested: bool = False
    # W3C trace context ({"traceparent", "tracestate"?}) of the StartJob call that created the job: its run (and a
    # run resumed by a later process) is traced as a child of it (tracing.py).
    trace_context: dict[str, str] = field(default_factory=dict)
    seq: int = 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id               TEXT NOT NULL UNIQUE,
    spec                 BLOB NOT NULL,
    state                INTEGER NOT NULL,
    output_dir           TEXT NOT NULL,
    progress             TEXT NOT NULL DEFAULT '{}',
    metrics              TEXT NOT NULL DEFAULT '{}',
    outputs              TEXT NOT NULL DEFAULT '{}',
    error                TEXT NOT NULL DEFAULT '',
    resume_count         INTEGER NOT NULL DEFAULT 0,
    last_checkpoint_step INTEGER NOT NULL DEFAULT 0,
    cancel_requested     INTEGER NOT NULL DEFAULT 0,
    trace_context        TEXT NOT NULL DEFAULT '{}',
    created_at           REAL NOT NULL,
    updated_at           REAL NOT NULL
)
"""

_COLUMNS = ("seq", "job_id", "spec", "state", "output_dir", "progress", "metrics", "outputs", "error",
            "resume_count", "last_checkpoint_step", "cancel_requested", "trace_context", "created_at", "updated_at")
_JSON_COLUMNS = ("progress", "metrics", "outputs", "trace_context")
_UPDATABLE = frozenset(_COLUMNS) - {"seq", "job_id", "spec", "created_at", "state", "trace_context"}


class JobStore:
    """Thread-safe job table. One connection, serialised by a lock: SQLite allows one writer anyway, and the
    trainer's write rate (one row per optimizer step) is tiny."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "jobs.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE takes the write lock up front, so a
        # read-check-write sequence cannot interleave with another process's writer either).
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        # Databases written before trace_context existed get the column (ALTER ... ADD COLUMN is idempotent here).
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "trace_context" not in columns:
            self._db.execute("ALTER TABLE jobs ADD COLUMN trace_context TEXT NOT NULL DEFAULT '{}'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reads --------------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _record(row)

    def list(self, *, after_seq: int = 0, limit: int = 100) -> list[JobRecord]:
        """Jobs in creation order, starting after ``after_seq`` (the seq of the last job of the previous page)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [_record(r) for r in rows]

    def in_states(self, states: Iterable[JobState]) -> list[JobRecord]:
        states = [int(s) for s in states]
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE state IN ({', '.join('?' * len(states))}) "
                "ORDER BY seq", states
            ).fetchall()
        return [_record(r) for r in rows]

    # -- writes -------------------------------------------------------------------------------------------------

    def create(self, job_id: str, spec: bytes, output_dir: str,
               trace_context: dict[str, str] | None = None) -> tuple[JobRecord, bool]:
        """Inserts a PENDING job; if ``job_id`` exists, returns the existing record instead. The bool says whether
        the job was created by this call (idempotent StartJob)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO jobs (job_id, spec, state, output_dir, trace_context, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job_id, spec, int(JobState.PENDING), output_dir, json.dumps(trace_context or {}), now, now))
                created = cur.rowcount == 1
                row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?",
                                       (job_id,)).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return _record(row), created

    def transition(self, job_id: str, to: JobState, *, allowed_from: Iterable[JobState] | None = None,
                   **updates: Any) -> JobRecord:
        """Moves the job to ``to`` and applies ``updates`` in one transaction, if its current state is in
        ``allowed_from`` (default: every state ALLOWED_TRANSITIONS lets reach ``to``). Raises InvalidTransition
        otherwise, and JobNotFound for an unknown id."""
        sources = set(allowed_from) if allowed_from is not None else {
            s for s, targets in ALLOWED_TRANSITIONS.items() if to in targets}
        illegal = {s for s in sources if to not in ALLOWED_TRANSITIONS.get(s, frozenset())}
        if illegal:
            raise ValueError(f"{sorted(s.name for s in illegal)} -> {to.name} is not a legal transition")
        return self._update(job_id, {**updates, "state": int(to)}, required_states=sources)

    def update(self, job_id: str, **updates: Any) -> JobRecord:
        """Updates non-state fields (progress, metrics, checkpoint step, outputs, …) of a job in any state."""
        return self._update(job_id, updates, required_states=None)

    def _update(self, job_id: str, updates: dict[str, Any], required_states: set[JobState] | None) -> JobRecord:
        unknown = set(updates) - _UPDATABLE - {"state"}
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        values = {k: (json.dumps(v) if k in _JSON_COLUMNS else v) for k, v in updates.items()}
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in values)
        params: list[Any] = [*values.values(), job_id]
        where = "job_id = ?"
        if required_states is not None:
            where += f" AND state IN ({', '.join('?' * len(required_states))})"
            params += [int(s) for s in required_states]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(f"UPDATE jobs SET {assignments} WHERE {where}", params)
                row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?",
                                       (job_id,)).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if row is None:
            raise JobNotFound(job_id)
        record = _record(row)
        if cur.rowcount == 0:
            raise InvalidTransition(
                f"job {job_id} is {record.state.name}; expected one of "
                f"{sorted(s.name for s in required_states or ())}")
        return record


def _record(row: tuple) -> JobRecord:
    data = dict(zip(_COLUMNS, row))
    for key in _JSON_COLUMNS:
        data[key] = json.loads(data[key])
    data["state"] = JobState(data["state"])
    data["cancel_requested"] = bool(data["cancel_requested"])
    data["spec"] = bytes(data["spec"])
    return JobRecord(**data)


__all__ = [
    "ALLOWED_TRANSITIONS",
    "InvalidTransition",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "JobStore",
    "TERMINAL_STATES",
]
