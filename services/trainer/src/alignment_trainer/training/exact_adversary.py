"""The exact worst case of docs/algorithm.md §4 computed in this process: an ``Adversary`` (adversary.py) that needs
no DroSolver, for tests. A port of services/dro-solver/src/solver/exact.ts (with problem.ts and assemble.ts),
which the production adversary (api/dro_client.py) runs behind gRPC; docs/algorithm.md has the mathematics.

ℓ = −log ξ is convex and decreasing, so the adversary only moves mass to δ, at gain r_i per unit of budget, and
r_i falls as ξ_i rises (fractional knapsack). Moving whole samples to δ in ascending ξ (ties by index) until ε is spent,
splitting at most one, is optimal; F = ERM + Σ_i p_i (ℓ(δ) − ℓ(ξ_i)). The ξ level where the cumulative cost crosses
ε is found by sorting the levels (O(N log N): exact.ts's worst-case path; its expected-O(N) bucket and quickselect
pass finds the same level); one pass in index order applies it.

λ* is the right derivative dF/dε: r of the split sample, or, when the budget ends exactly after a whole sample, r of
the next one. At ε = 0, λ* = r of the smallest ξ > δ. Saturated (ε ≥ ε_sat): F = −log δ, m = 1, λ* = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from alignment_trainer.training.adversary import DroSolution, floats

SATURATION_WARNING = (
    "saturated: epsilon >= epsilon_sat, so all mass sits at delta, the worst case is -log(delta) and the gradient "
    "vanishes (lambda_star = 0); use rho < 1 to keep a learning signal"
)


class InvalidProblem(ValueError):
    """The problem has no answer; ``field`` is the SolveRequest field at fault (as the DroSolver names it)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


@dataclass
class _Prepared:
    """A validated problem in working form: ξ clipped onto [δ, 1−δ], weights normalised, the radius resolved."""

    delta: float
    xi: list[float]
    loss: list[float]  # ℓ(ξ_i) = −log ξ_i
    gain: list[float]  # ℓ(δ) − ℓ(ξ_i), the gain per unit mass of moving sample i to δ
    w: list[float]  # Σ w_i = 1
    loss_delta: float
    erm: float
    eps_sat: float
    epsilon: float
    saturated: bool


@dataclass
class _Plan:
    m: list[float]  # m_i ∈ [0, 1], the fraction of sample i moved to δ
    lambda_star: float
    value: float


class ExactAdversary:
    """The exact solver in this process; holds nothing, so ``close`` is a no-op."""

    def solve(
        self,
        log_xi: np.ndarray | torch.Tensor,
        *,
        delta: float,
        rho: float | None = None,
        epsilon: float | None = None,
        weights: np.ndarray | torch.Tensor | None = None,
    ) -> DroSolution:
        if (rho is None) == (epsilon is None):
            raise ValueError("give exactly one of rho (relative radius) and epsilon (absolute radius)")
        prep = _prepare(floats(log_xi).tolist(), None if weights is None else floats(weights).tolist(), delta,
                        rho, epsilon)
        plan = _saturated_plan(prep) if prep.saturated else _exact_plan(prep)
        return _solution(prep, plan)

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------- problem (problem.ts)


def _validate(log_xi: list[float], weights: list[float] | None, delta: float, rho: float | None,
              epsilon: float | None) -> None:
    if not log_xi:
        raise InvalidProblem("log_xi", "must contain at least one sample")
    for i, v in enumerate(log_xi):
        if v <= 0:  # -inf included (ξ = 0, clipped onto δ); NaN fails every comparison
            continue
        why = ("is NaN" if math.isnan(v) else "is not finite" if math.isinf(v)
               else "is > 0, but xi = exp(log_xi) is a probability and must be <= 1")
        raise InvalidProblem("log_xi", f"log_xi[{i}] = {v} {why}")
    if weights:
        if len(weights) != len(log_xi):
            raise InvalidProblem("weights", f"has {len(weights)} entries but log_xi has {len(log_xi)}")
        for i, v in enumerate(weights):
            if not v >= 0 or v == math.inf:
                raise InvalidProblem("weights", f"weights[{i}] = {v} must be finite and >= 0")
        if not any(v > 0 for v in weights):
            raise InvalidProblem("weights", "all weights are zero; they cannot be normalised")
    if not 0 < delta < 0.5:
        raise InvalidProblem("delta", f"delta = {delta} must be in (0, 0.5); the support is [delta, 1 - delta] "
                                      "and delta = 0 makes the worst case infinite")
    if epsilon is not None and (not epsilon >= 0 or epsilon == math.inf):
        raise InvalidProblem("epsilon", f"epsilon = {epsilon} must be finite and >= 0")
    if rho is not None and not 0 <= rho < 1:
        raise InvalidProblem("rho", f"rho = {rho} must be in [0, 1)")


def _prepare(log_xi: list[float], weights: list[float] | None, delta: float, rho: float | None,
             epsilon: float | None) -> _Prepared:
    _validate(log_xi, weights, delta, rho, epsilon)
    n = len(log_xi)
    hi_clip = 1 - delta
    loss_delta = -math.log(delta)
    loss_hi = -math.log(hi_clip)
    xi, loss, gain = [0.0] * n, [0.0] * n, [0.0] * n
    for i, lx in enumerate(log_xi):
        x = math.exp(lx)
        if x < delta:
            xi[i], loss[i] = delta, loss_delta
        elif x > hi_clip:
            xi[i], loss[i] = hi_clip, loss_hi
        else:
            xi[i], loss[i] = x, -lx
        # From ξ ≥ 2δ on the gain is ≥ log 2 and the plain difference loses at most a few ulps; below, log1p keeps
        # the digits the difference would cancel.
        gain[i] = loss_delta - loss[i] if xi[i] >= 2 * delta else math.log1p((xi[i] - delta) / delta)
    w = _normalised_weights(weights, n)
    erm = 0.0
    eps_sat = 0.0
    for i in range(n):
        erm += w[i] * loss[i]
        eps_sat += w[i] * (xi[i] - delta)
    eps = epsilon if epsilon is not None else rho * eps_sat
    return _Prepared(delta=delta, xi=xi, loss=loss, gain=gain, w=w, loss_delta=loss_delta, erm=erm,
                     eps_sat=eps_sat, epsilon=eps, saturated=eps >= eps_sat)


def _normalised_weights(weights: list[float] | None, n: int) -> list[float]:
    if not weights:
        return [1 / n] * n
    # Dividing by the maximum first keeps the sum finite for weights near the float64 limit.
    top = max(weights)
    w = [v / top for v in weights]
    total = 0.0
    for v in w:
        total += v
    return [v / total for v in w]


def _ratio(xi: float, delta: float) -> float:
    """r(ξ) = (ℓ(δ) − ℓ(ξ))/(ξ − δ), the gain per unit of budget of moving mass from ξ to δ; 1/δ at ξ = δ."""
    d = xi - delta
    return math.log1p(d / delta) / d if d > 0 else 1 / delta


def _zero_cost_fraction(wi: float, epsilon: float) -> float:
    """Zero-weight samples move nothing; samples at δ move for free whenever there is any budget."""
    return 1.0 if wi > 0 and epsilon > 0 else 0.0


# ---------------------------------------------------------------------------------------------- plans (exact.ts)


def _cut_level(prep: _Prepared) -> tuple[float, float]:
    """(L, Σ_{ξ_i < L} c_i) for the smallest level L with Σ_{ξ_i < L} c_i ≤ ε < Σ_{ξ_i ≤ L} c_i, where
    c_i = w_i (ξ_i − δ) over the samples with a positive cost; the largest level when everything fits."""
    delta, epsilon = prep.delta, prep.epsilon
    costed = sorted((x, wi * (x - delta))
                    for x, wi in zip(prep.xi, prep.w) if wi > 0 and x > delta)
    base = 0.0
    last = (math.nan, 0.0)
    j = 0
    while j < len(costed):
        level = costed[j][0]
        sum_eq = 0.0
        while j < len(costed) and costed[j][0] == level:
            sum_eq += costed[j][1]
            j += 1
        if base + sum_eq > epsilon:
            return level, base
        last = (level, base)
        base += sum_eq
    return last


def _exact_plan(prep: _Prepared) -> _Plan:
    delta, xi, w, gain, epsilon = prep.delta, prep.xi, prep.w, prep.gain, prep.epsilon
    level, cum = _cut_level(prep)
    m = [0.0] * len(xi)
    total_gain = 0.0
    min_above = math.inf
    ties: list[int] = []
    for i, (wi, x) in enumerate(zip(w, xi)):
        if wi == 0 or x == delta:
            m[i] = _zero_cost_fraction(wi, epsilon)
        elif x < level:
            m[i] = 1.0
            total_gain += wi * gain[i]
        elif x > level:
            min_above = min(min_above, x)
        else:
            ties.append(i)
    r_level = _ratio(level, delta)
    lambda_star = math.nan
    for i in ties:
        c = w[i] * (level - delta)
        if cum + c <= epsilon:
            m[i] = 1.0
            cum += c
            total_gain += w[i] * gain[i]
            continue
        mi = (epsilon - cum) / c
        m[i] = mi
        lambda_star = r_level
        if mi > 0:
            total_gain += mi * w[i] * gain[i]
        break
    else:
        # Only reachable when rounding let the whole level fit: the budget ends right after it, and the next
        # sample up (if any) sets the right derivative.
        lambda_star = _ratio(min_above, delta) if min_above < math.inf else r_level
    return _Plan(m=m, lambda_star=lambda_star, value=prep.erm + total_gain)


def _saturated_plan(prep: _Prepared) -> _Plan:
    """ε ≥ ε_sat: everything with mass and a cost moves; F = ℓ(δ) and λ* = 0."""
    m = [1.0 if wi > 0 and x > prep.delta else _zero_cost_fraction(wi, prep.epsilon)
         for wi, x in zip(prep.w, prep.xi)]
    return _Plan(m=m, lambda_star=0.0, value=prep.loss_delta)


# ---------------------------------------------------------------------------------------- solution (assemble.ts)


def _solution(prep: _Prepared, plan: _Plan) -> DroSolution:
    w = np.asarray(prep.w, dtype=np.float64)
    m = np.asarray(plan.m, dtype=np.float64)
    stay = w * (1 - m)
    moved = w * m
    return DroSolution(
        value=plan.value,
        erm_value=prep.erm,
        lambda_star=plan.lambda_star,
        epsilon=prep.epsilon,
        epsilon_sat=prep.eps_sat,
        saturated=prep.saturated,
        moved_fraction=m,
        surrogate_a=stay,
        surrogate_b=moved * plan.lambda_star,
        warnings=(SATURATION_WARNING,) if prep.saturated else (),
    )


__all__ = ["ExactAdversary", "InvalidProblem", "SATURATION_WARNING"]
