"""OpenTelemetry across processes: a trainer server (subprocess, OTEL_TRACES_EXPORTER=jsonl) runs a W-DRO job started
with a caller's traceparent against a TypeScript DroSolver exporting to the same file; the spans of both form one
tree under the caller's span. Plus the SpanRecord format and the interceptor's error status, in-process."""

from __future__ import annotations

import collections
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from alignment_trainer import tracing
from alignment_trainer.api.contracts import common_pb2, trainer_pb2, trainer_pb2_grpc
from conftest import run_dro_solver
from world import build_world

SRC = Path(__file__).resolve().parents[1] / "src"
RECORD_KEYS = {"trace_id", "span_id", "parent_span_id", "name", "service", "kind", "start_unix_nanos",
               "end_unix_nanos", "status", "attributes"}


def test_jsonl_exporter_writes_tracing_ts_span_records(tmp_path):
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "trainer"}))
    provider.add_span_processor(SimpleSpanProcessor(tracing.JsonlSpanExporter(str(path))))
    t = provider.get_tracer("test")
    with t.start_as_current_span("outer", kind=SpanKind.SERVER) as outer:
        with t.start_as_current_span("inner", kind=SpanKind.CLIENT, attributes={"a": 1, "b": ("x", "y")}):
            pass
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in records] == ["inner", "outer"]
    inner, outer_rec = records
    assert set(inner) == RECORD_KEYS
    assert inner["kind"] == "CLIENT" and outer_rec["kind"] == "SERVER"
    assert inner["service"] == "trainer" and inner["status"] == "UNSET"
    assert inner["parent_span_id"] == outer_rec["span_id"] and outer_rec["parent_span_id"] is None
    assert len(inner["trace_id"]) == 32 and len(inner["span_id"]) == 16
    assert inner["trace_id"] == format(outer.get_span_context().trace_id, "032x")
    assert inner["attributes"] == {"a": 1, "b": ["x", "y"]}
    assert isinstance(inner["start_unix_nanos"], int) and inner["end_unix_nanos"] >= inner["start_unix_nanos"]


def test_ids_do_not_follow_the_seed_a_training_job_gives_python_random(monkeypatch):
    import random

    # init_tracing's provider, without registering it for the rest of this process (other tests expect none).
    monkeypatch.setattr(tracing, "_provider", None)
    monkeypatch.setattr(tracing.trace, "set_tracer_provider", lambda provider: None)
    tracing.init_tracing(kind="none")
    provider = tracing._provider
    assert provider is not None and isinstance(provider.id_generator, tracing.UrandomIdGenerator)
    spans, traces = [], []
    for _ in range(3):
        random.seed(7)  # what runner.py does at the start of every job
        spans.append(provider.id_generator.generate_span_id())
        traces.append(provider.id_generator.generate_trace_id())
    assert len(set(spans)) == 3 and len(set(traces)) == 3
    assert all(0 < s < 2**64 for s in spans) and all(0 < t < 2**128 for t in traces)


# -------------------------------------------------------------------------------------- one trace, three processes


@pytest.fixture(scope="module")
def spans_file(tmp_path_factory):
    return tmp_path_factory.mktemp("traces") / "spans.jsonl"


@pytest.fixture(scope="module")
def traced_solver(spans_file):
    with run_dro_solver({"OTEL_TRACES_EXPORTER": "jsonl", "OTEL_TRACES_FILE": str(spans_file)}) as address:
        yield address


def _start_trainer(data_dir: Path, env: dict[str, str]):
    proc = subprocess.Popen([sys.executable, "-m", "alignment_trainer.server"], cwd=SRC.parent,
                            env={**os.environ, "PYTHONPATH": str(SRC), "PORT": "0", "HOST": "127.0.0.1",
                                 "DATA_DIR": str(data_dir), **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    output: collections.deque[str] = collections.deque(maxlen=200)
    port: list[int] = []
    ready = threading.Event()

    def drain() -> None:
        for line in proc.stderr:
            output.append(line.rstrip())
            if not port:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("msg") == "listening":
                    port.append(int(record["port"]))
                    ready.set()
        ready.set()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    if not ready.wait(90) or not port:
        proc.kill()
        proc.wait()
        drainer.join(5)
        proc.stderr.close()
        pytest.fail("trainer did not start:\n" + "\n".join(output))
    return proc, port[0], output, drainer


def test_a_wdro_job_is_one_trace_across_trainer_and_solver(tmp_path, spans_file, traced_solver):
    world = build_world(tmp_path / "world")
    proc, port, output, drainer = _start_trainer(tmp_path / "data", {
        "OTEL_TRACES_EXPORTER": "jsonl", "OTEL_TRACES_FILE": str(spans_file), "TRAINER_TRACE_STEP_EVERY": "2",
        "DRO_SOLVER_ADDRESS": traced_solver})
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    try:
        pref = trainer_pb2.PreferenceJob(init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
                                         pairs=common_pb2.ArtifactRef(uri=world.pairs.as_uri()),
                                         loss=common_pb2.PREFERENCE_LOSS_WDRO, beta=0.5,
                                         wdro=common_pb2.WdroBudget(rho=0.3, delta=0.01))
        spec = trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
            learning_rate=2e-3, batch_size=4, epochs=1, max_length=64))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            stub.StartJob(trainer_pb2.StartJobRequest(job_id="traced", spec=spec), timeout=30,
                          metadata=(("traceparent", f"00-{trace_id}-{caller_span}-01"),))
            deadline = time.monotonic() + 120
            while True:
                job = stub.GetJob(trainer_pb2.GetJobRequest(job_id="traced"), timeout=10).job
                if job.state not in (common_pb2.JOB_STATE_PENDING, common_pb2.JOB_STATE_RUNNING):
                    break
                assert time.monotonic() < deadline, "job did not finish"
                time.sleep(0.2)
            assert job.state == common_pb2.JOB_STATE_SUCCEEDED, job.error
            # A call without a traceparent is a trace of its own.
            stub.GetJob(trainer_pb2.GetJobRequest(job_id="traced"), timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drainer.join(5)
        proc.stderr.close()
    assert proc.returncode == 0, "\n".join(output)

    records = [json.loads(line) for line in spans_file.read_text().splitlines() if line.strip()]
    for r in records:
        assert set(r) == RECORD_KEYS, r
    ours = [r for r in records if r["trace_id"] == trace_id]
    by_id = {r["span_id"]: r for r in ours}
    names = collections.Counter((r["service"], r["kind"], r["name"]) for r in ours)

    start = [r for r in ours if r["name"] == "alignment.v1.Trainer/StartJob"]
    assert len(start) == 1 and start[0]["kind"] == "SERVER" and start[0]["service"] == "trainer"
    assert start[0]["parent_span_id"] == caller_span
    assert start[0]["attributes"]["rpc.grpc.status_code"] == 0
    # Every GetJob poll carried no traceparent: none of them is in the caller's trace.
    assert not [r for r in ours if r["name"] == "alignment.v1.Trainer/GetJob"]
    assert any(r["name"] == "alignment.v1.Trainer/GetJob" and r["parent_span_id"] is None for r in records)

    (job,) = [r for r in ours if r["name"] == "trainer.job preference"]
    assert job["parent_span_id"] == start[0]["span_id"] and job["kind"] == "INTERNAL"
    assert job["attributes"]["trainer.loss"] == "wdro" and job["attributes"]["trainer.state"] == "SUCCEEDED"

    steps = [r for r in ours if r["name"] == "trainer.step"]
    assert len(steps) == 2 and all(s["parent_span_id"] == job["span_id"] for s in steps)  # 4 steps, every 2nd

    clients = [r for r in ours if r["name"] == "alignment.v1.DroSolver/Solve" and r["kind"] == "CLIENT"]
    assert len(clients) == 4, names  # one solve per optimizer step
    for c in clients:
        assert c["service"] == "trainer"
        assert c["parent_span_id"] in {job["span_id"], *(s["span_id"] for s in steps)}
    assert sum(c["parent_span_id"] != job["span_id"] for c in clients) == 2  # inside the traced steps

    servers = [r for r in ours if r["name"] == "alignment.v1.DroSolver/Solve" and r["kind"] == "SERVER"]
    assert len(servers) == 4, names
    assert {s["parent_span_id"] for s in servers} == {c["span_id"] for c in clients}
    assert all(s["service"] != "trainer" for s in servers)

    # One tree: every span of the trace reaches the caller's span through its parents.
    for r in ours:
        node, hops = r, 0
        while node["parent_span_id"] in by_id:
            node, hops = by_id[node["parent_span_id"]], hops + 1
            assert hops < 10
        assert node["parent_span_id"] == caller_span, r


def test_the_callers_trace_context_is_stored_with_the_job(tmp_path):
    """A job resumed by a later process parents its span to the same StartJob span: the context is durable, and a
    database from before the column existed gains it."""
    import sqlite3

    from alignment_trainer.jobs.store import JobStore

    old = sqlite3.connect(tmp_path / "jobs.sqlite3")
    old.execute("CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE, spec BLOB "
                "NOT NULL, state INTEGER NOT NULL, output_dir TEXT NOT NULL, progress TEXT NOT NULL DEFAULT '{}', "
                "metrics TEXT NOT NULL DEFAULT '{}', outputs TEXT NOT NULL DEFAULT '{}', error TEXT NOT NULL "
                "DEFAULT '', resume_count INTEGER NOT NULL DEFAULT 0, last_checkpoint_step INTEGER NOT NULL "
                "DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL "
                "NOT NULL)")
    old.execute("INSERT INTO jobs (job_id, spec, state, output_dir, created_at, updated_at) "
                "VALUES ('old', x'', 1, '/tmp/x', 0, 0)")
    old.commit()
    old.close()
    store = JobStore(tmp_path)
    try:
        assert store.get("old").trace_context == {}
        parent = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
        store.create("new", b"", "/tmp/y", parent)
        assert store.get("new").trace_context == parent
        ctx = tracing.context_from(store.get("new").trace_context)
        span_ctx = trace.get_current_span(ctx).get_span_context()
        assert format(span_ctx.trace_id, "032x") == "a" * 32 and format(span_ctx.span_id, "016x") == "b" * 16
    finally:
        store.close()
