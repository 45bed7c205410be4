"""store.py: job records survive a reopen, transitions are checked and atomic."""

from __future__ import annotations

import threading

import pytest

from alignment_trainer.api.contracts import common_pb2
from alignment_trainer.jobs.store import InvalidTransition, JobNotFound, JobState, JobStore


def test_states_mirror_the_proto_enum():
    for state in JobState:
        assert common_pb2.JobState.Value(f"JOB_STATE_{state.name}") == state.value


def test_create_is_idempotent_and_durable(tmp_path):
    store = JobStore(tmp_path)
    rec, created = store.create("j1", b"spec-1", "/out/j1")
    assert created and rec.state == JobState.PENDING and rec.spec == b"spec-1"
    again, created = store.create("j1", b"other", "/elsewhere")
    assert not created and again.spec == b"spec-1" and again.output_dir == "/out/j1"
    store.transition("j1", JobState.RUNNING)
    store.update("j1", progress={"done": 3, "total": 10}, metrics={"loss": 0.5}, last_checkpoint_step=2)
    store.close()

    reopened = JobStore(tmp_path)
    rec = reopened.get("j1")
    assert rec.state == JobState.RUNNING
    assert rec.progress == {"done": 3, "total": 10} and rec.metrics == {"loss": 0.5}
    assert rec.last_checkpoint_step == 2
    with pytest.raises(JobNotFound):
        reopened.get("nope")


def test_transitions_are_checked(tmp_path):
    store = JobStore(tmp_path)
    store.create("j", b"", "")
    with pytest.raises(ValueError, match="not a legal transition"):
        store.transition("j", JobState.SUCCEEDED, allowed_from=[JobState.PENDING])
    store.transition("j", JobState.RUNNING)
    store.transition("j", JobState.SUCCEEDED, outputs={"metrics": {"path": "/m", "sha256": "0" * 64,
                                                                   "size_bytes": 1}})
    with pytest.raises(InvalidTransition, match="j is SUCCEEDED"):
        store.transition("j", JobState.CANCELLED)
    assert store.get("j").state == JobState.SUCCEEDED


def test_racing_transitions_have_exactly_one_winner(tmp_path):
    store = JobStore(tmp_path)
    for i in range(20):
        store.create(f"j{i}", b"", "")
        store.transition(f"j{i}", JobState.RUNNING)
    outcomes = {JobState.SUCCEEDED: 0, JobState.CANCELLED: 0}
    lock = threading.Lock()

    def attempt(job_id, target):
        try:
            store.transition(job_id, target, allowed_from=[JobState.RUNNING])
            with lock:
                outcomes[target] += 1
        except InvalidTransition:
            pass

    for i in range(20):
        threads = [threading.Thread(target=attempt, args=(f"j{i}", t))
                   for t in (JobState.SUCCEEDED, JobState.CANCELLED)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(outcomes.values()) == 20  # one winner per job, never two
    assert all(store.get(f"j{i}").state in outcomes for i in range(20))


def test_list_pages_in_creation_order(tmp_path):
    store = JobStore(tmp_path)
    for name in ("c", "a", "b"):
        store.create(name, b"", "")
    first = store.list(limit=2)
    assert [r.job_id for r in first] == ["c", "a"]
    assert [r.job_id for r in store.list(after_seq=first[-1].seq, limit=2)] == ["b"]
    assert [r.job_id for r in store.in_states([JobState.PENDING])] == ["c", "a", "b"]
