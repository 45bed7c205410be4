"""The adversary of the W-DRO objectives (docs/algorithm.md §4): what the objectives ask of it and what it answers.

The objectives (objectives.py) depend on this interface only. Two implementations exist:
  * api/dro_client.py ``DroSolverClient``: the alignment.v1.DroSolver gRPC service (services/dro-solver), which
    the job wiring (jobs/manager.py, jobs/cli.py) uses in production;
  * exact_adversary.py ``ExactAdversary``: the same exact worst case computed in this process, for tests.
See docs/algorithm.md (the W-DRO adversary) for the mathematics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class DroSolution:
    """The parts of a worst-case solution the trainer uses (float64 numpy arrays, one entry per pair of the solve)."""

    value: float  # worst-case expected loss F
    erm_value: float  # plain mean DPO loss of the same pairs
    lambda_star: float  # shadow price dF/dε
    epsilon: float  # radius used
    epsilon_sat: float
    saturated: bool
    moved_fraction: np.ndarray  # m_i
    surrogate_a: np.ndarray  # a_i = w_i (1 − m_i)
    surrogate_b: np.ndarray  # b_i = w_i m_i λ*
    warnings: tuple[str, ...]

    def surrogate_a_tensor(self, like: torch.Tensor) -> torch.Tensor:
        """a as a tensor on like's device and dtype (for losses.wdro_surrogate)."""
        return torch.as_tensor(self.surrogate_a, device=like.device, dtype=like.dtype)

    def surrogate_b_tensor(self, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.surrogate_b, device=like.device, dtype=like.dtype)

    def metrics(self) -> dict[str, float]:
        """dro/* metrics: F is logged here because the surrogate's value differs from it by a constant (§4)."""
        return {
            "dro/value": self.value,
            "dro/erm_value": self.erm_value,
            "dro/lambda_star": self.lambda_star,
            "dro/epsilon": self.epsilon,
            "dro/moved_frac": float(np.mean(self.moved_fraction > 0)) if self.moved_fraction.size else 0.0,
            "dro/saturated": float(self.saturated),
        }


class Adversary(Protocol):
    """Solves the worst case of §4 over one optimizer step's pairs."""

    def solve(
        self,
        log_xi: np.ndarray | torch.Tensor,
        *,
        delta: float,
        rho: float | None = None,
        epsilon: float | None = None,
        weights: np.ndarray | torch.Tensor | None = None,
    ) -> DroSolution:
        """Worst case for these log ξ (from losses.wdro_log_xi) in the ball of radius ε (``epsilon``) or ρ·ε_sat
        (``rho``; exactly one of the two) over the support [δ, 1 − δ]; ``weights`` default to uniform."""
        ...

    def close(self) -> None:
        """Releases what the adversary holds (a channel); the job calls it once at the end."""
        ...


ConnectAdversary = Callable[[str], Adversary]
"""How the job wiring gives a W-DRO job its adversary: called with the job's dro_solver_address."""


def floats(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 copy of values as one flat array (tensors detached and moved to the CPU)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


__all__ = ["Adversary", "ConnectAdversary", "DroSolution", "floats"]
