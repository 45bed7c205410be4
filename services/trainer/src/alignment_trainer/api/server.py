"""The trainer's gRPC server: grpc.health.v1, server reflection and the alignment.v1.Trainer service.

    python -m alignment_trainer.server        (PYTHONPATH=services/trainer/src; `npx nx run trainer:serve`; that
                                              entry point, alignment_trainer/server.py, runs main() here)

Configuration (environment):
    PORT                      listening port, default 50055 (0 = any free port; the chosen one is logged)
    HOST                      bind address, default [::] (all interfaces, IPv4 too) with TLS, 127.0.0.1 without
    DATA_DIR                  job database and per-job files, default ./.data/trainer
    DRO_SOLVER_ADDRESS        DroSolver for W-DRO jobs that name none, default localhost:50054
    TRAINER_MAX_WORKERS       RPC worker threads, default 128; WatchJob streams may hold all but 8 of them (the rest
                              keep Health, GetJob and the other unary RPCs answering), more get RESOURCE_EXHAUSTED
    TRAINER_DRO_SOLVER_ALLOWLIST  comma-separated DroSolver addresses a job may name besides DRO_SOLVER_ADDRESS; any
                              other is PERMISSION_DENIED (a caller cannot make the trainer connect where it likes)
    TRAINER_MAX_QUEUED_JOBS   jobs that may wait for the worker at once, default 64; StartJob beyond gets RESOURCE_EXHAUSTED
    TRAINER_MAX_PARAMETERS    the largest model an SFT job builds from an architecture (besides embeddings), default 10^9
    TRAINER_THREADS           torch threads, default $OMP_NUM_THREADS, else the cores available less one (cpu_env.py)
    ALIGNMENT_CPU_PINS        on (default: the reproducibility pins of cpu_env.py) | off (native kernels)
    TRAINER_SHUTDOWN_GRACE_S  seconds in-flight RPCs and the running job get on SIGTERM/SIGINT, default 10
    LOG_LEVEL                 debug | info | warning | error, default info
    OTEL_TRACES_EXPORTER      none (default) | otlp | console | jsonl; OTEL_TRACES_FILE for jsonl (tracing.py)
    TRAINER_TRACE_STEP_EVERY  a trainer.step span every N optimizer steps, default 0 (none)
    TRAINER_LAUNCH            inprocess (default: jobs run in the worker thread) | accelerate (each job is an
                              `accelerate launch -m alignment_trainer.cli run` subprocess; jobs/launcher.py)
    TRAINER_ACCELERATE_CONFIG accelerate config file for TRAINER_LAUNCH=accelerate (services/trainer/accelerate/)
    TRAINER_NUM_PROCESSES     processes per launched job, default 1
    TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE, TLS_CLIENT_AUTH, TLS_ALLOWED_CLIENTS, TLS_RELOAD_INTERVAL_MS,
    ALLOW_PLAINTEXT           transport security and caller identities (api/tls.py); plaintext is refused on a
                              non-loopback HOST unless ALLOW_PLAINTEXT=1
    HEALTH_PORT               a plaintext port serving only grpc.health.v1, for Kubernetes probes (which cannot
                              speak TLS); unset: none

On startup, jobs a previous process left RUNNING are resumed from their last checkpoint or reported INTERRUPTED
(jobs/manager.py). On SIGTERM or SIGINT the health status of every service turns NOT_SERVING (watchers are told at
once), the running job checkpoints and stops at its next step boundary (it resumes on restart), new RPCs are refused, and
in-flight ones get the grace period before the process exits 0.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from alignment_trainer import cpu_env, logs, tracing
from alignment_trainer.api.contracts import TRAINER_SERVICE, trainer_pb2_grpc
from alignment_trainer.api.servicer import TrainerServicer, parse_stored_spec, watcher_slots
from alignment_trainer.api.status_guard import StatusGuardInterceptor
from alignment_trainer.api.tls import IdentityInterceptor, TlsSettings, is_loopback, server_credentials, settings_from_env
from alignment_trainer.config import DEFAULT_DRO_SOLVER_ADDRESS
from alignment_trainer.jobs.manager import JobManager

DEFAULT_PORT = 50055
DEFAULT_DATA_DIR = "./.data/trainer"

log = logs.get_logger("alignment_trainer.server")


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    manager: JobManager
    servicer: TrainerServicer
    health_server: grpc.Server | None = None
    health_port: int | None = None

    def shutdown(self, grace_s: float) -> None:
        """NOT_SERVING for every service; the running job checkpoints and stops; new RPCs are refused and
        in-flight ones get up to grace_s; then the worker gets what is left of grace_s to finish its checkpoint."""
        self.health.enter_graceful_shutdown()
        log.info("shutting down", extra={"fields": {"grace_s": grace_s}})
        deadline = time.monotonic() + grace_s
        self.manager.begin_shutdown()
        self.server.stop(grace_s).wait()
        if self.health_server is not None:
            self.health_server.stop(0)
        if not self.manager.join(max(0.0, deadline - time.monotonic())):
            # The job stays RUNNING in the store; the next start resumes it from its last periodic checkpoint.
            log.warning("the running job did not stop within the grace period")
        self.manager.close()
        log.info("stopped")


DEFAULT_MAX_WORKERS = 128
# How long at most a signal waits for the main thread (see main).
SIGNAL_POLL_S = 0.5


def start(host: str = "[::]", port: int = DEFAULT_PORT, max_workers: int = DEFAULT_MAX_WORKERS, *, data_dir: str | None = None,
          dro_solver_address: str | None = None, dro_solver_allowlist: list[str] | None = None,
          tls: TlsSettings | None = None, health_port: int | None = None) -> RunningServer:
    """Builds and starts the server; port 0 picks a free port (RunningServer.port says which). data_dir and
    dro_solver_address default to $DATA_DIR and $DRO_SOLVER_ADDRESS, then to DEFAULT_DATA_DIR and
    DEFAULT_DRO_SOLVER_ADDRESS. A job may name its own DroSolver only if the address is dro_solver_address or in
    dro_solver_allowlist (default $TRAINER_DRO_SOLVER_ALLOWLIST, comma-separated). tls defaults to the TLS_*
    environment (api/tls.py), health_port to $HEALTH_PORT (None: no health-only port)."""
    data_dir = data_dir or os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR
    dro_solver_address = dro_solver_address or os.environ.get("DRO_SOLVER_ADDRESS") or DEFAULT_DRO_SOLVER_ADDRESS
    manager = JobManager(data_dir, default_dro_address=dro_solver_address, parse_spec=parse_stored_spec,
                         launch=(os.environ.get("TRAINER_LAUNCH") or "inprocess").strip(),
                         accelerate_config=os.environ.get("TRAINER_ACCELERATE_CONFIG") or None,
                         num_processes=_env_number("TRAINER_NUM_PROCESSES", 1))
    tls = tls or settings_from_env()
    tracing.init_tracing()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        # Tracing outermost; then the caller's identity (api/tls.py); the guard maps malformed bytes and unmapped
        # exceptions (api/status_guard.py).
        interceptors=[tracing.ServerInterceptor(),
                      *([IdentityInterceptor(tls.allowed_clients)] if tls.allowed_clients else []),
                      StatusGuardInterceptor()],
        # Without this, Linux lets a second server bind the same port silently and the two share the traffic.
        options=[("grpc.so_reuseport", 0)],
    )
    if dro_solver_allowlist is None:
        dro_solver_allowlist = [a.strip() for a in os.environ.get("TRAINER_DRO_SOLVER_ALLOWLIST", "").split(",") if a.strip()]
    servicer = TrainerServicer(manager, max_watchers=watcher_slots(max_workers),
                               dro_solver_allowlist={dro_solver_address, *dro_solver_allowlist})
    trainer_pb2_grpc.add_TrainerServicer_to_server(servicer, server)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    reflection.enable_server_reflection(
        (TRAINER_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    address = f"{host}:{port}"
    try:
        bound = server.add_secure_port(address, server_credentials(tls)) if tls.cert_file else server.add_insecure_port(address)
    except RuntimeError as err:
        manager.close()
        raise OSError(f"cannot listen on {address}: {err}") from err
    if bound == 0:  # older grpcio reported failure this way
        manager.close()
        raise OSError(f"cannot listen on {address}")
    health_server, health_bound = None, None
    if health_port is None and (os.environ.get("HEALTH_PORT") or "").strip():
        health_port = _env_number("HEALTH_PORT", 0)
    if health_port is not None:
        # Health only, in plaintext: what a Kubernetes grpc probe can reach (it does not speak TLS).
        health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"),
                                    options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        try:
            health_bound = health_server.add_insecure_port(f"{host}:{health_port}")
        except RuntimeError as err:
            manager.close()
            raise OSError(f"cannot listen on {host}:{health_port} (HEALTH_PORT): {err}") from err
    # Recovery before serving: a client's first GetJob already sees resumed/INTERRUPTED states, never a stale RUNNING.
    manager.recover()
    manager.start()
    server.start()
    if health_server is not None:
        health_server.start()

    for service in ("", TRAINER_SERVICE):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "listening",
        extra={"fields": {"address": f"{host}:{bound}", "port": bound, "services": [TRAINER_SERVICE],
                          "data_dir": str(manager.data_dir), "dro_solver_address": dro_solver_address,
                          "cpu": cpu_env.describe(), "health_port": health_bound,
                          "transport": (f"tls (client auth {tls.client_auth})" if tls.cert_file
                                        else "plaintext (TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE for TLS)")}},
    )
    return RunningServer(server=server, port=bound, health=health_servicer, manager=manager, servicer=servicer,
                         health_server=health_server, health_port=health_bound)


def _env_number(name: str, default, kind=int):
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None


def main() -> int:
    logs.configure()
    # Models and tokenizers come from local paths only (docs/architecture.md "Offline rules"), and the training
    # libraries' progress bars would interleave with the JSON log lines on stderr.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    port = _env_number("PORT", DEFAULT_PORT)
    max_workers = _env_number("TRAINER_MAX_WORKERS", DEFAULT_MAX_WORKERS)
    grace_s = _env_number("TRAINER_SHUTDOWN_GRACE_S", 10.0, float)
    try:
        cpu_env.configure_torch(serving=True)
    except cpu_env.CpuEnvError as err:
        raise SystemExit(str(err)) from None

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal received", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        tls = settings_from_env()
    except ValueError as err:
        log.error("failed to start", extra={"fields": {"error": str(err)}})
        return 1
    # Every interface with TLS (in a pod); loopback without, so that plaintext stays on this machine.
    host = os.environ.get("HOST") or ("[::]" if tls.cert_file else "127.0.0.1")
    if not tls.cert_file and not is_loopback(host):
        if os.environ.get("ALLOW_PLAINTEXT") != "1":
            log.error("failed to start", extra={"fields": {"error": (
                f"refusing to serve plaintext gRPC on {host}: set TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE, bind "
                "HOST=127.0.0.1, or set ALLOW_PLAINTEXT=1")}})
            return 1
        log.warning(f"transport is plaintext on {host} (ALLOW_PLAINTEXT=1): calls cross the network unencrypted")
    try:
        running = start(host=host, port=port, max_workers=max_workers, tls=tls)
    except OSError as err:
        log.error("failed to start", extra={"fields": {"error": str(err)}})
        return 1
    # The kernel may hand SIGTERM to any thread (gRPC's, torch's); Python then runs the handler only when the main
    # thread next runs bytecode, which a long wait would delay by as much as its timeout (an hour, once, in CI).
    while not stop.wait(timeout=SIGNAL_POLL_S):
        pass
    running.shutdown(grace_s)
    tracing.shutdown_tracing()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
