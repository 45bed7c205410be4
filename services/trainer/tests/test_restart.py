"""A trainer killed with SIGKILL loses no job: on restart a job with a checkpoint resumes from it and completes, and
a job without one is reported INTERRUPTED with the reason (the real entry point, as a subprocess)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest

from alignment_trainer.api.contracts import common_pb2, trainer_pb2, trainer_pb2_grpc
from world import build_world, read_metrics

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
START_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 120.0


class Server:
    """python -m alignment_trainer.server on a free port with the given data dir; its JSON log lines are kept."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        env = {**os.environ, "PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "2",
               "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, "-m", "alignment_trainer.server"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.logs: list[dict] = []
        self._listening = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._listening.wait(START_TIMEOUT_S) or not self.port:
            self.kill()
            pytest.fail("trainer did not start: " + json.dumps(self.logs[-5:]))
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = trainer_pb2_grpc.TrainerStub(self.channel)

    port = 0

    def _drain(self) -> None:
        for line in self.proc.stderr:
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            self.logs.append(record)
            if record.get("msg") == "listening":
                self.port = record["port"]
                self._listening.set()
        self._listening.set()

    def get(self, job_id: str) -> trainer_pb2.Job:
        return self.stub.GetJob(trainer_pb2.GetJobRequest(job_id=job_id), timeout=10).job

    def wait_for(self, job_id: str, predicate, what: str) -> trainer_pb2.Job:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while True:
            job = self.get(job_id)
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                pytest.fail(f"{job_id}: never {what}; last state {job}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no final write; what is on disk is all the next process gets."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if hasattr(self, "channel"):
            self.channel.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.channel.close()
        return code


def long_sft(world, checkpoint_every: int) -> trainer_pb2.JobSpec:
    arch = trainer_pb2.ArchitectureConfig(model_type="llama", hidden_size=32, num_layers=2, num_attention_heads=4,
                                          intermediate_size=64, tokenizer=common_pb2.ArtifactRef(
                                              uri=world.tokenizer.as_uri()))
    # 32 examples in steps of 2, 12.5 epochs: 200 steps (~20 ms each), long enough to be caught in the middle.
    return trainer_pb2.JobSpec(
        sft=trainer_pb2.SftJob(architecture=arch, dataset=common_pb2.ArtifactRef(uri=world.sft.as_uri())),
        hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-3, batch_size=2, epochs=12.5, max_length=48,
                                                checkpoint_every_steps=checkpoint_every))


def test_jobs_survive_a_killed_trainer(tmp_path):
    world = build_world(tmp_path / "world")
    data_dir = tmp_path / "data"
    servers: list[Server] = []
    try:
        # 1. A job without checkpoints is running when the trainer is killed.
        first = Server(data_dir)
        servers.append(first)
        first.stub.StartJob(trainer_pb2.StartJobRequest(spec=long_sft(world, 0), job_id="no-ckpt"), timeout=10)
        first.wait_for("no-ckpt", lambda j: j.state == common_pb2.JOB_STATE_RUNNING and j.progress.done >= 1,
                       "running")
        first.kill()

        # 2. The next trainer reports it INTERRUPTED, with why and what was saved; then a checkpointing job is
        #    killed after its first checkpoints.
        second = Server(data_dir)
        servers.append(second)
        lost = second.get("no-ckpt")
        assert lost.state == common_pb2.JOB_STATE_INTERRUPTED
        assert "before this job wrote a resumable checkpoint" in lost.error
        assert "checkpoint_every_steps: only at the end" in lost.error
        assert lost.outputs.metrics.uri.endswith("metrics.jsonl") and lost.last_checkpoint_step == 0

        second.stub.StartJob(trainer_pb2.StartJobRequest(spec=long_sft(world, 10), job_id="ckpt"), timeout=10)
        caught = second.wait_for("ckpt", lambda j: j.last_checkpoint_step >= 10, "checkpointed")
        second.kill()
        assert caught.state == common_pb2.JOB_STATE_RUNNING and caught.progress.done < caught.progress.total

        # 3. The third trainer resumes it from the checkpoint and completes it.
        third = Server(data_dir)
        servers.append(third)
        done = [e.job for e in third.stub.WatchJob(trainer_pb2.WatchJobRequest(job_id="ckpt"),
                                                   timeout=JOB_TIMEOUT_S) if e.HasField("job")][-1]
        assert done.state == common_pb2.JOB_STATE_SUCCEEDED, done.error
        assert done.resume_count == 1
        assert done.progress.done == done.progress.total == 200
        resumed = [r for r in third.logs if r.get("msg") == "resuming from checkpoint"]
        assert len(resumed) == 1 and resumed[0]["step"] >= caught.last_checkpoint_step
        assert resumed[0]["step"] % 10 == 0
        steps = [r["step"] for r in read_metrics(data_dir / "jobs" / "ckpt" / "output" / "metrics.jsonl")]
        assert steps == list(range(1, 201))  # the steps after the checkpoint were redone once, not duplicated
        assert third.get("no-ckpt").state == common_pb2.JOB_STATE_INTERRUPTED  # stays reported, not retried
        assert third.stop() == 0
    finally:
        for s in servers:
            if s.proc.poll() is None:
                s.kill()
            s.proc.stderr.close()


def test_graceful_shutdown_checkpoints_the_running_job_and_the_next_start_resumes_it(tmp_path):
    """SIGTERM path (in-process): the running job writes a checkpoint at its next step boundary and stays RUNNING,
    so the next trainer resumes it without redoing a step."""
    from alignment_trainer.api import server as trainer_server

    world = build_world(tmp_path / "world")
    data_dir = str(tmp_path / "data")
    first = trainer_server.start(host="127.0.0.1", port=0, data_dir=data_dir)
    with grpc.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        stub = trainer_pb2_grpc.TrainerStub(channel)
        stub.StartJob(trainer_pb2.StartJobRequest(spec=long_sft(world, 0), job_id="drain"), timeout=10)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while stub.GetJob(trainer_pb2.GetJobRequest(job_id="drain"), timeout=10).job.progress.done < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    first.shutdown(grace_s=30)
    suspended = stored_job(data_dir, "drain")
    assert suspended.state.name == "RUNNING" and suspended.last_checkpoint_step >= 3

    second = trainer_server.start(host="127.0.0.1", port=0, data_dir=data_dir)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            done = [e.job for e in stub.WatchJob(trainer_pb2.WatchJobRequest(job_id="drain"),
                                                 timeout=JOB_TIMEOUT_S) if e.HasField("job")][-1]
    finally:
        second.shutdown(grace_s=5)
    assert done.state == common_pb2.JOB_STATE_SUCCEEDED, done.error
    assert done.resume_count == 1
    steps = [r["step"] for r in read_metrics(tmp_path / "data" / "jobs" / "drain" / "output" / "metrics.jsonl")]
    assert steps == list(range(1, 201))


def stored_job(data_dir: str, job_id: str):
    from alignment_trainer.jobs.store import JobStore

    store = JobStore(data_dir)
    try:
        return store.get(job_id)
    finally:
        store.close()
