"""Shared fixtures of the trainer's tests.

dro_solver_address: the real TypeScript DroSolver (services/dro-solver), started once per test session as a
subprocess on a free loopback port, and stopped at the end. It needs the repo's node_modules and the generated
TypeScript contracts (`npx nx run contracts:codegen`, which `npm test` runs first). run_dro_solver() starts another
one with extra environment (test_tracing.py: one that exports its spans to a jsonl file).

moto_endpoint: http://127.0.0.1:PORT of a moto S3 server (moto_server.py), one per test module, so that each module's
buckets and keys start empty; use_moto() points objectstore at it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pathlib
import signal
import subprocess
import threading
import time

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = pathlib.Path(__file__).resolve().parents[3]
SOLVER_MAIN = REPO / "services/dro-solver/src/main.ts"
TSX = REPO / "node_modules/.bin/tsx"
SOLVER_START_TIMEOUT_S = 60.0  # tsx compiles on the fly: a few seconds warm, more on a cold, busy CI machine

# Two cores on CI: torch's default (one thread per core, plus interop threads) only adds contention for the tiny
# tensors of these tests.
torch.set_num_threads(2)


@pytest.fixture(scope="module")
def moto_endpoint():
    """http://127.0.0.1:PORT of a moto S3 server for this test module."""
    from moto_server import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def dro_solver_address():
    """host:port of a running DroSolver, SERVING on grpc.health.v1."""
    with run_dro_solver() as address:
        yield address


@contextlib.contextmanager
def run_dro_solver(env: dict[str, str] | None = None):
    """Starts the TypeScript DroSolver (extra environment ``env``, e.g. OTEL_TRACES_EXPORTER=jsonl and
    OTEL_TRACES_FILE), yields its host:port once SERVING, and stops it (SIGTERM, which flushes its spans)."""
    if not TSX.exists():
        pytest.fail(f"{TSX} is missing: run `npm ci` at the repo root (the DroSolver runs under tsx)")
    proc = subprocess.Popen(
        [str(TSX), str(SOLVER_MAIN)],
        cwd=REPO,
        # PORT=0: the solver binds a free port and logs it; reading it back avoids a pick-then-bind race.
        env={**os.environ, "PORT": "0", "LOG_LEVEL": "info", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: collections.deque[str] = collections.deque(maxlen=200)
    port: list[int] = []
    ready = threading.Event()

    def drain() -> None:
        # Keep reading for the whole session so the solver never blocks on a full pipe.
        for line in proc.stdout:
            output.append(line.rstrip())
            if not port:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("msg") == "serving" and "port" in record:
                    port.append(int(record["port"]))
                    ready.set()
        ready.set()  # EOF: the process ended

    drainer = threading.Thread(target=drain, name="dro-solver-output", daemon=True)
    drainer.start()
    try:
        if not ready.wait(SOLVER_START_TIMEOUT_S) or not port:
            pytest.fail("DroSolver did not start; its output:\n" + "\n".join(output))
        address = f"127.0.0.1:{port[0]}"
        _wait_serving(address, deadline=time.monotonic() + SOLVER_START_TIMEOUT_S)
        yield address
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        drainer.join(timeout=5)
        proc.stdout.close()


def _wait_serving(address: str, deadline: float) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service="alignment.v1.DroSolver"), timeout=2).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"DroSolver at {address} never reported SERVING")
            time.sleep(0.1)
