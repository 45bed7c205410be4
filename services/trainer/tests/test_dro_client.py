"""dro_client.py and the §4 W-DRO surrogate against the real DroSolver (services/dro-solver, see conftest.py), plus
retry, deadline and trace propagation against an in-process fake solver."""

from __future__ import annotations

import socket
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
import torch
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from alignment_trainer.training import losses
from alignment_trainer.api.contracts import dro_pb2, dro_pb2_grpc
from alignment_trainer import tracing
from alignment_trainer.api.dro_client import DroSolverClient, DroSolverUnavailable

BETA, DELTA = 1.0, 0.01


def linear_model(n: int = 12, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A stand-in for the policy: margins h = X θ, so ∂F/∂θ is a 3-vector we can difference numerically."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    theta = 0.7 * torch.randn(d, generator=g, dtype=torch.float64)  # ξ = σ(βh) in about [0.04, 0.89]
    return x, theta


def test_surrogate_gradient_through_the_real_solver_matches_finite_differences_of_its_value(dro_solver_address):
    """∇θ of wdro_surrogate(h(θ); a, b) with (a, b) from the solver = central differences of the solver's F(θ)."""
    x, theta0 = linear_model()
    with DroSolverClient(dro_solver_address) as solver:
        h0 = x @ theta0
        xi0 = torch.sigmoid(BETA * h0)
        # A fixed absolute radius: with rho the radius would move with θ (ε = ρ·(mean ξ − δ)) and F's derivative would
        # pick up that term too; the surrogate is the gradient at fixed ε, as in training where ε is set per step.
        epsilon = 0.3 * (xi0.mean().item() - DELTA)
        sol = solver.solve(losses.wdro_log_xi(h0, BETA), delta=DELTA, epsilon=epsilon)

        # Preconditions: a generic point, away from the kinks of F (a split sample strictly inside (0, 1), nothing
        # clipped, and some mass moved), so that F is differentiable there.
        assert not sol.saturated and sol.lambda_star > 0
        partial = sol.moved_fraction[(sol.moved_fraction > 0) & (sol.moved_fraction < 1)]
        assert partial.size == 1 and 0.05 < partial[0] < 0.95, sol.moved_fraction
        assert (sol.moved_fraction == 1).sum() >= 1
        assert ((xi0 > DELTA) & (xi0 < 1 - DELTA)).all()

        theta = theta0.clone().requires_grad_()
        a, b = sol.surrogate_a_tensor(h0), sol.surrogate_b_tensor(h0)
        surrogate = losses.wdro_surrogate(x @ theta, BETA, a, b, DELTA)
        (grad,) = torch.autograd.grad(surrogate, theta)

        def value(th: torch.Tensor) -> float:
            return solver.solve(losses.wdro_log_xi(x @ th, BETA), delta=DELTA, epsilon=epsilon).value

        eta = 1e-5
        basis = torch.eye(3, dtype=torch.float64)
        fd = torch.tensor([(value(theta0 + eta * e) - value(theta0 - eta * e)) / (2 * eta) for e in basis],
                          dtype=torch.float64)
    assert torch.allclose(grad, fd, rtol=1e-4, atol=1e-9), (grad, fd)
    # The check discriminates: plain DPO's gradient, and the surrogate without the moved atoms' term (b = 0, the
    # "atoms frozen at δ" reading of §4), are both far off.
    erm = torch.autograd.grad(losses.dpo(x @ theta, BETA).mean(), theta)[0]
    frozen = torch.autograd.grad(losses.wdro_surrogate(x @ theta, BETA, a, torch.zeros_like(b), DELTA), theta)[0]
    assert (erm - fd).norm() > 0.05 * fd.norm()
    assert (frozen - fd).norm() > 0.05 * fd.norm()


def test_wdro_sr_gradient_is_that_of_its_documented_objective(dro_solver_address):
    """L(θ) = (1/N)·Σ_flagged spa_refined + (n_U/N)·F_U(θ), F_U the solver's value over the unflagged pairs."""
    x, theta0 = linear_model(seed=1)
    z = torch.tensor([i % 4 == 0 for i in range(12)])  # 3 flagged, 9 unflagged
    alpha, n, n_u = 0.1, 12, 9
    with DroSolverClient(dro_solver_address) as solver:
        h0 = x @ theta0
        epsilon = 0.25 * (torch.sigmoid(BETA * h0[~z]).mean().item() - DELTA)
        sol = solver.solve(losses.wdro_log_xi(h0[~z], BETA), delta=DELTA, epsilon=epsilon)
        partial = sol.moved_fraction[(sol.moved_fraction > 0) & (sol.moved_fraction < 1)]
        assert partial.size == 1 and 0.05 < partial[0] < 0.95, sol.moved_fraction

        theta = theta0.clone().requires_grad_()
        a, b = sol.surrogate_a_tensor(h0), sol.surrogate_b_tensor(h0)
        (grad,) = torch.autograd.grad(losses.wdro_sr(x @ theta, BETA, z, alpha, a, b, DELTA), theta)

        def objective(th: torch.Tensor) -> float:
            h = x @ th
            refined = losses.spa_refined(h[z], BETA, torch.ones(3), alpha).sum().item() / n
            worst = solver.solve(losses.wdro_log_xi(h[~z], BETA), delta=DELTA, epsilon=epsilon).value
            return refined + n_u / n * worst

        eta = 1e-5
        basis = torch.eye(3, dtype=torch.float64)
        fd = torch.tensor([(objective(theta0 + eta * e) - objective(theta0 - eta * e)) / (2 * eta) for e in basis],
                          dtype=torch.float64)
    assert torch.allclose(grad, fd, rtol=1e-4, atol=1e-9), (grad, fd)


def test_solution_fields_and_metrics_from_the_real_solver(dro_solver_address):
    log_xi = np.log([0.95, 0.7, 0.4, 0.1])
    with DroSolverClient(dro_solver_address) as solver:
        sol = solver.solve(torch.tensor(log_xi), delta=DELTA, rho=0.25)
    assert sol.moved_fraction.shape == sol.surrogate_a.shape == sol.surrogate_b.shape == (4,)
    assert sol.value > sol.erm_value == pytest.approx(-log_xi.mean())
    assert sol.epsilon == pytest.approx(0.25 * sol.epsilon_sat)
    # a_i = w_i (1 - m_i), b_i = w_i m_i λ* with w_i = 1/4.
    np.testing.assert_allclose(sol.surrogate_a, 0.25 * (1 - sol.moved_fraction), rtol=1e-12)
    np.testing.assert_allclose(sol.surrogate_b, 0.25 * sol.moved_fraction * sol.lambda_star, rtol=1e-12)
    m = sol.metrics()
    assert m["dro/value"] == sol.value and m["dro/lambda_star"] == sol.lambda_star
    assert m["dro/moved_frac"] == np.mean(sol.moved_fraction > 0) and m["dro/saturated"] == 0.0


def test_invalid_argument_is_raised_unchanged_and_not_retried(dro_solver_address):
    with DroSolverClient(dro_solver_address, initial_backoff_s=5.0) as solver:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            solver.solve(np.log([0.5, 0.6]), delta=0.7, rho=0.1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "delta" in err.value.details()
    assert time.monotonic() - started < 4.0  # no 5 s backoff happened
    with pytest.raises(ValueError, match="exactly one of rho"):
        DroSolverClient("127.0.0.1:1").solve(np.zeros(2), delta=0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_solver_raises_quickly_naming_the_address():
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    client = DroSolverClient(address, timeout_s=2.0, max_attempts=3, initial_backoff_s=0.05)
    started = time.monotonic()
    with pytest.raises(DroSolverUnavailable) as err:
        client.solve(np.log([0.5]), delta=0.1, rho=0.1)
    elapsed = time.monotonic() - started
    client.close()
    assert elapsed < 5.0
    assert err.value.attempts == 3 and err.value.code == grpc.StatusCode.UNAVAILABLE
    assert address in str(err.value) and "no fallback to DPO" in str(err.value)


class FakeSolver(dro_pb2_grpc.DroSolverServicer):
    """Fails the first `fail_first` calls with UNAVAILABLE (or sleeps `sleep_s`), records every call's metadata."""

    def __init__(self, fail_first: int = 0, sleep_s: float = 0.0) -> None:
        self.fail_first, self.sleep_s = fail_first, sleep_s
        self.calls: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def Solve(self, request, context):
        with self.lock:
            self.calls.append(dict(context.invocation_metadata()))
            n = len(self.calls)
        if n <= self.fail_first:
            context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        time.sleep(self.sleep_s)
        k = len(request.log_xi)
        return dro_pb2.SolveResponse(
            value=1.0, moved_fraction=[0.0] * k, surrogate_a=[1.0 / k] * k, surrogate_b=[0.0] * k
        )


@pytest.fixture()
def fake_solver():
    servers = []

    def start(servicer: FakeSolver) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        dro_pb2_grpc.add_DroSolverServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0).wait()


def test_unavailable_is_retried_with_backoff_then_succeeds(fake_solver):
    servicer = FakeSolver(fail_first=2)
    with DroSolverClient(fake_solver(servicer), max_attempts=3, initial_backoff_s=0.05) as client:
        sol = client.solve(np.log([0.5, 0.25]), delta=0.1, rho=0.1)
    assert len(servicer.calls) == 3
    np.testing.assert_array_equal(sol.surrogate_a, [0.5, 0.5])


def test_retries_are_bounded(fake_solver):
    servicer = FakeSolver(fail_first=10)
    with DroSolverClient(fake_solver(servicer), max_attempts=2, initial_backoff_s=0.01) as client:
        with pytest.raises(DroSolverUnavailable, match="after 2 attempt"):
            client.solve(np.log([0.5]), delta=0.1, rho=0.1)
    assert len(servicer.calls) == 2


def test_deadline_exceeded_is_not_retried(fake_solver):
    servicer = FakeSolver(sleep_s=1.0)
    with DroSolverClient(fake_solver(servicer), timeout_s=0.2, max_attempts=5) as client:
        with pytest.raises(DroSolverUnavailable) as err:
            client.solve(np.log([0.5]), delta=0.1, rho=0.1)
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and err.value.attempts == 1
    assert len(servicer.calls) == 1


def test_w3c_trace_context_is_propagated_when_a_span_is_active(fake_solver):
    servicer = FakeSolver()
    trace_id, span_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
    parent = SpanContext(trace_id=trace_id, span_id=span_id, is_remote=True, trace_flags=TraceFlags(1))
    with DroSolverClient(fake_solver(servicer)) as client:
        client.solve(np.log([0.5]), delta=0.1, rho=0.1)  # no active context: no traceparent
        with trace.use_span(NonRecordingSpan(parent)):
            client.solve(np.log([0.5]), delta=0.1, rho=0.1)
    # Once a process has registered the SDK provider (tracing.init_tracing: the trainer's server does, and an earlier
    # test in this process may have started one), every solve is a CLIENT span of its own: the call without an active
    # context then starts a trace of its own, and the other one continues the parent's trace as a child span.
    # Without it (the API's no-op provider), the parent's context itself is injected and nothing without one.
    if tracing._provider is None:
        assert "traceparent" not in servicer.calls[0]
        assert servicer.calls[1]["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    else:
        version, first_trace, _, _ = servicer.calls[0]["traceparent"].split("-")
        _, second_trace, second_span, flags = servicer.calls[1]["traceparent"].split("-")
        assert (version, second_trace) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736")
        assert first_trace != second_trace and second_span != "00f067aa0ba902b7" and int(flags, 16) & 1
