"""Client of alignment.v1.DroSolver, the adversary of docs/algorithm.md §4 (served by services/dro-solver): the
production implementation of training/adversary.py's ``Adversary`` (docs/algorithm.md).

    with DroSolverClient("127.0.0.1:50054") as solver:
        sol = solver.solve(losses.wdro_log_xi(h, beta), delta=0.01, rho=0.25)
        loss = losses.wdro_surrogate(h, beta, sol.surrogate_a_tensor(h), sol.surrogate_b_tensor(h), delta=0.01)

Each attempt has a deadline. UNAVAILABLE (nothing listening, connection reset, server restarting) is retried with
exponential backoff a bounded number of times; if the solver is still unreachable, or an attempt runs past its
deadline, DroSolverUnavailable is raised naming the address. There is deliberately no fallback to plain DPO: a W-DRO
job that silently trained DPO would report results for a method it did not run. Other errors (INVALID_ARGUMENT for a
bad request, INTERNAL) are raised unchanged as grpc.RpcError: retrying them cannot help.

Each solve is a CLIENT span ``alignment.v1.DroSolver/Solve`` (a child of the active span), and its calls carry that
span's W3C trace context (``traceparent`` metadata), so the solver's SERVER span is its child.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import torch
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from alignment_trainer.api.contracts import dro_pb2, dro_pb2_grpc
from alignment_trainer.api.tls import TlsSettings, channel_credentials, settings_from_env
from alignment_trainer.training.adversary import DroSolution, floats

SOLVE_RPC = "alignment.v1.DroSolver/Solve"
DEFAULT_TIMEOUT_S = 10.0
"""Deadline of one attempt. A solve is O(N log N) and takes microseconds; the deadline only bounds a stuck server."""
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_INITIAL_BACKOFF_S = 0.2
"""Sleep before the 2nd attempt; doubled each time (0.2, 0.4, 0.8, 1.6 s: about 3 s in all before giving up)."""
DEFAULT_MAX_BACKOFF_S = 2.0

# The solver accepts messages up to 64 MiB (GRPC_MAX_MESSAGE_BYTES in the service kit); gRPC Python's default
# 4 MiB receive limit would fail a solve of ~10^5 pairs on the response (N + 1 atoms plus four arrays of N).
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    # After a failed connect the channel waits its reconnect backoff (1 s growing to 120 s by default) before
    # trying again, and RPCs fail fast meanwhile; short backoffs let our retries see a solver that just came back.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class DroSolverUnavailable(RuntimeError):
    """Raised when the DroSolver at `address` cannot be reached after all attempts, or an attempt timed out."""

    def __init__(self, address: str, attempts: int, code: grpc.StatusCode, details: str) -> None:
        self.address = address
        self.attempts = attempts
        self.code = code
        super().__init__(
            f"DroSolver at {address} unavailable after {attempts} attempt(s): {code.name}: {details}. "
            "A W-DRO job needs the solver (there is no fallback to DPO); start it "
            "(`npx nx run dro-solver:serve`) or set the job's dro_solver_address."
        )


def solution_from_response(response: dro_pb2.SolveResponse) -> DroSolution:
    """The parts of a SolveResponse the trainer uses."""
    return DroSolution(
        value=response.value,
        erm_value=response.erm_value,
        lambda_star=response.lambda_star,
        epsilon=response.epsilon,
        epsilon_sat=response.epsilon_sat,
        saturated=response.saturated,
        moved_fraction=np.asarray(response.moved_fraction, dtype=np.float64),
        surrogate_a=np.asarray(response.surrogate_a, dtype=np.float64),
        surrogate_b=np.asarray(response.surrogate_b, dtype=np.float64),
        warnings=tuple(response.warnings),
    )


class DroSolverClient:
    """The Adversary (training/adversary.py) served by a DroSolver over gRPC: a channel to one DroSolver; reuse it
    for a whole job and close it at the end (or use it as a context)."""

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        initial_backoff_s: float = DEFAULT_INITIAL_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        tls: TlsSettings | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.address = address
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        # TLS when TLS_CA_FILE is set (tls defaults to the TLS_* environment, api/tls.py), with the trainer's
        # certificate as the client's; the files are read per client, so the next job uses rotated certificates.
        credentials = channel_credentials(tls or settings_from_env())
        self._channel = (grpc.secure_channel(address, credentials, options=_CHANNEL_OPTIONS) if credentials
                         else grpc.insecure_channel(address, options=_CHANNEL_OPTIONS))
        self._stub = dro_pb2_grpc.DroSolverStub(self._channel)

    def solve(
        self,
        log_xi: np.ndarray | torch.Tensor,
        *,
        delta: float,
        rho: float | None = None,
        epsilon: float | None = None,
        weights: np.ndarray | torch.Tensor | None = None,
    ) -> DroSolution:
        """Worst case of §4 for these log ξ (from losses.wdro_log_xi); exactly one of rho and epsilon.

        The solver validates the numbers (delta in (0, 0.5), rho in [0, 1), finite log ξ <= 0) and answers
        INVALID_ARGUMENT naming the field; that grpc.RpcError is raised unchanged.
        """
        if (rho is None) == (epsilon is None):
            raise ValueError("give exactly one of rho (relative radius) and epsilon (absolute radius)")
        # Training needs only the coefficients; the atoms would cost more to encode than the solve itself.
        request = dro_pb2.SolveRequest(
            log_xi=_floats(log_xi), delta=delta, mode=dro_pb2.SOLVE_MODE_EXACT, omit_atoms=True
        )
        if rho is not None:
            request.rho = rho
        else:
            request.epsilon = epsilon
        if weights is not None:
            request.weights.extend(_floats(weights))
        return solution_from_response(self._call(request))

    def _call(self, request: dro_pb2.SolveRequest) -> dro_pb2.SolveResponse:
        # One CLIENT span per solve (retries included), child of the active span (the job's or a step's); the
        # solver's SERVER span becomes its child through the injected traceparent.
        with trace.get_tracer("alignment_trainer").start_as_current_span(
                SOLVE_RPC, kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False,
                attributes={"rpc.system": "grpc", "rpc.method": SOLVE_RPC, "server.address": self.address,
                            "dro.n": len(request.log_xi)}) as span:
            try:
                response = self._attempts(request, span)
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                span.set_status(Status(StatusCode.ERROR, f"{code.name}: {err.details() or ''}"))
                raise
            except DroSolverUnavailable as err:
                span.set_attribute("rpc.grpc.status_code", err.code.value[0])
                span.set_status(Status(StatusCode.ERROR, str(err)))
                raise
            span.set_attribute("rpc.grpc.status_code", grpc.StatusCode.OK.value[0])
            return response

    def _attempts(self, request: dro_pb2.SolveRequest, span) -> dro_pb2.SolveResponse:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # no-op without an active span context
        metadata = tuple(carrier.items())
        backoff = self.initial_backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                span.set_attribute("rpc.attempts", attempt)
                return self._stub.Solve(request, timeout=self.timeout_s, metadata=metadata)
            except grpc.RpcError as err:
                code = err.code()
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    # Not retried: a solve takes microseconds, so a timeout means a stuck or overloaded server, and
                    # retrying would multiply the stall of every training step.
                    raise DroSolverUnavailable(self.address, attempt, code, err.details() or "") from err
                if code != grpc.StatusCode.UNAVAILABLE:
                    raise
                if attempt == self.max_attempts:
                    raise DroSolverUnavailable(self.address, attempt, code, err.details() or "") from err
            time.sleep(backoff)
            backoff = min(2 * backoff, self.max_backoff_s)
        raise AssertionError("unreachable")  # the loop returns or raises

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> DroSolverClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _floats(values: np.ndarray | torch.Tensor) -> list[float]:
    return floats(values).tolist()
