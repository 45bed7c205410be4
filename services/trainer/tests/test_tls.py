"""The trainer over mTLS (api/tls.py), on loopback with certificates made by tools/deploy/make-certs.sh (openssl):
an allowed client is served, a client without a certificate fails the handshake (UNAVAILABLE), one whose verified
certificate is not allowed gets PERMISSION_DENIED, Kubernetes probes reach the plaintext health-only port, re-issued
certificate files serve new connections, and the DroSolver client speaks mTLS."""

from __future__ import annotations

import os
import pathlib
import socket
import ssl
import subprocess
import sys
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from alignment_trainer._gen.alignment.v1 import dro_pb2, dro_pb2_grpc, trainer_pb2, trainer_pb2_grpc
from alignment_trainer.api import server as trainer_server
from alignment_trainer.api.dro_client import DroSolverClient
from alignment_trainer.api.tls import TlsConfigError, server_credentials, settings_from_env

ROOT = pathlib.Path(__file__).resolve().parents[3]
TIMEOUT = 5.0


def make_certs(directory: pathlib.Path, *names: str) -> None:
    subprocess.run(["bash", str(ROOT / "tools/deploy/make-certs.sh"), str(directory), *names], check=True,
                   capture_output=True)


def env_of(directory: pathlib.Path, name: str, **extra: str) -> dict[str, str]:
    return {"TLS_CA_FILE": str(directory / "ca.crt"), "TLS_CERT_FILE": str(directory / f"{name}.crt"),
            "TLS_KEY_FILE": str(directory / f"{name}.key"), **extra}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    make_certs(directory, "trainer", "coordinator", "judge", "dro-solver")
    return directory


@pytest.fixture(scope="module")
def running(certs, tmp_path_factory):
    tls = settings_from_env(env_of(certs, "trainer", TLS_CLIENT_AUTH="require", TLS_ALLOWED_CLIENTS="coordinator",
                                   TLS_RELOAD_INTERVAL_MS="10"))
    srv = trainer_server.start(host="127.0.0.1", port=0, max_workers=4, data_dir=str(tmp_path_factory.mktemp("data")),
                               tls=tls, health_port=0)
    try:
        yield srv
    finally:
        srv.shutdown(grace_s=0.5)


def get_job(port: int, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    target = f"localhost:{port}"
    with (grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)) as channel:
        try:
            trainer_pb2_grpc.TrainerStub(channel).GetJob(trainer_pb2.GetJobRequest(job_id="no-such-job"), timeout=TIMEOUT)
        except grpc.RpcError as err:
            return err.code()
    return grpc.StatusCode.OK


def client_credentials(directory: pathlib.Path, name: str | None) -> grpc.ChannelCredentials:
    ca = (directory / "ca.crt").read_bytes()
    if name is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=(directory / f"{name}.key").read_bytes(),
                                        certificate_chain=(directory / f"{name}.crt").read_bytes())


def test_an_allowed_client_certificate_reaches_the_service(running, certs):
    # NOT_FOUND is the Trainer's own answer for an unknown job: the call went through the handshake and the allowlist.
    assert get_job(running.port, client_credentials(certs, "coordinator")) == grpc.StatusCode.NOT_FOUND


def test_a_client_without_a_certificate_fails_the_handshake(running, certs):
    assert get_job(running.port, client_credentials(certs, None)) == grpc.StatusCode.UNAVAILABLE
    assert get_job(running.port, None) == grpc.StatusCode.UNAVAILABLE  # plaintext


def test_a_verified_certificate_outside_the_allowlist_is_permission_denied(running, certs):
    assert get_job(running.port, client_credentials(certs, "judge")) == grpc.StatusCode.PERMISSION_DENIED


def test_probes_reach_the_plaintext_health_only_port(running):
    with grpc.insecure_channel(f"127.0.0.1:{running.health_port}") as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def served_certificate(port: int, certs: pathlib.Path) -> bytes:
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    context.load_cert_chain(str(certs / "coordinator.crt"), str(certs / "coordinator.key"))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls_socket:
            return tls_socket.getpeercert(binary_form=True)


def test_new_connections_get_the_reissued_certificate(running, certs):
    der = lambda: ssl.PEM_cert_to_DER_cert((certs / "trainer.crt").read_text())  # noqa: E731
    assert served_certificate(running.port, certs) == der()
    make_certs(certs, "trainer")
    reissued = der()
    deadline = time.monotonic() + 5
    while served_certificate(running.port, certs) != reissued and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served_certificate(running.port, certs) == reissued
    assert get_job(running.port, client_credentials(certs, "coordinator")) == grpc.StatusCode.NOT_FOUND


class Solver(dro_pb2_grpc.DroSolverServicer):
    def Solve(self, request, context):
        k = len(request.log_xi)
        return dro_pb2.SolveResponse(value=2.5, moved_fraction=[0.0] * k, surrogate_a=[1.0 / k] * k, surrogate_b=[0.0] * k)


def test_the_dro_solver_client_speaks_mtls(certs):
    solver_tls = settings_from_env(env_of(certs, "dro-solver", TLS_CLIENT_AUTH="require"))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    dro_pb2_grpc.add_DroSolverServicer_to_server(Solver(), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(solver_tls))
    server.start()
    try:
        with DroSolverClient(f"localhost:{port}", tls=settings_from_env(env_of(certs, "trainer"))) as client:
            assert client.solve(np.log([0.5, 0.5]), delta=0.1, rho=0.1).value == 2.5
        with DroSolverClient(f"localhost:{port}", max_attempts=1, tls=settings_from_env({"TLS_CA_FILE": str(certs / "ca.crt")})) as client:
            with pytest.raises(Exception, match="UNAVAILABLE"):
                client.solve(np.log([0.5, 0.5]), delta=0.1, rho=0.1)
    finally:
        server.stop(0).wait()


def test_settings_name_the_variable_that_is_wrong(certs):
    with pytest.raises(TlsConfigError, match="TLS_CERT_FILE and TLS_KEY_FILE must be set together"):
        settings_from_env({"TLS_CERT_FILE": str(certs / "judge.crt")})
    with pytest.raises(TlsConfigError, match="not a matching PEM certificate and key"):
        settings_from_env(env_of(certs, "judge", TLS_KEY_FILE=str(certs / "coordinator.key")))
    with pytest.raises(TlsConfigError, match="TLS_CLIENT_AUTH must be none, optional or require"):
        settings_from_env(env_of(certs, "judge", TLS_CLIENT_AUTH="always"))


def test_the_entry_point_refuses_plaintext_off_loopback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLS_") and k != "ALLOW_PLAINTEXT"}
    env.update({"HOST": "0.0.0.0", "PORT": "0", "DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT / "services/trainer/src")})
    proc = subprocess.run([sys.executable, "-m", "alignment_trainer.server"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert "refusing to serve plaintext gRPC on 0.0.0.0" in proc.stderr + proc.stdout
