"""The per-round adversary (docs/algorithm.md §7): the W-DRO worst case of §4 solved once per round, SSAPO's schedule
(Chu et al., "Stackelberg Self-Annotation", NeurIPS 2025), with our exact solver instead of SSAPO's tangent lines.

Before the round's first optimizer step, the pairs the SPA judge labelled (data.PreferencePair.judge_margin: the
judge's h_i of §1, π_{t−1} or π_0 against π_init) are cut, in the job's pair order (the pairs file's order), into
consecutive groups of G = WdroSettings.group_size; the last group may be smaller. Each group g is solved once with the
job's Adversary on ξ_i = σ(β·h_i), with the same δ and ε or ρ as the per-step schedule (ρ·ε_sat is then the group's
own saturation budget), and its surrogate coefficients are stored scaled by |g|, so that a pair nobody moved has
(A_i, B_i) = (1, 0):

    A_i = |g|·a_i = 1 − m_i,    B_i = |g|·b_i = m_i·λ*_g          (uniform weights w_i = 1/|g| in the solve)

Training then minimises, over the pairs P of each loss evaluation (a step's pairs), the surrogate of §4 with these
coefficients held fixed:  L = (1/|P|)·Σ_{i∈P} [A_i·(−log σ(βh_i)) − B_i·σ(βh_i)], with no adversary call. Pairs
without a judge margin (replayed human seed pairs) are in no group and keep (1, 0): plain DPO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from alignment_trainer.config import WdroSettings
from alignment_trainer.training import losses
from alignment_trainer.training.adversary import Adversary


@dataclass(frozen=True)
class PerRoundWeights:
    """The fixed surrogate coefficients of every training pair, indexed like the job's examples."""

    surrogate_a: np.ndarray  # A_i, float64
    surrogate_b: np.ndarray  # B_i, float64
    # ω_i = A_i + B_i·ξ_i at the judge's ξ_i: pair i's gradient weight relative to DPO's at the judge's margin
    # (docs/dro.md §3.3); 1 for pairs in no group.
    judge_weight: np.ndarray
    grouped: np.ndarray  # bool: the pair is in a group (it has a judge margin)
    groups: int
    solver_calls: int
    moved_pairs: int  # grouped pairs the adversary moved (m_i > 0)

    def coefficients(self, indices: Sequence[int], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) of losses.wdro_surrogate for the pairs ``indices`` (example indices, in h's order): A and B divided
        by the number of pairs, so the surrogate is their mean loss; on like's device and dtype."""
        idx = np.asarray(indices, dtype=np.int64)
        n = max(len(idx), 1)

        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(values[idx] / n, device=like.device, dtype=like.dtype)

        return tensor(self.surrogate_a), tensor(self.surrogate_b)

    def metrics(self) -> dict[str, float]:
        """dro/per_round_* metrics, the same on every step of the round; weights over the grouped pairs."""
        weights = self.judge_weight[self.grouped]
        return {
            "dro/per_round_groups": float(self.groups),
            "dro/per_round_solver_calls": float(self.solver_calls),
            "dro/per_round_pairs": float(weights.size),
            "dro/per_round_moved_frac": self.moved_pairs / weights.size if weights.size else 0.0,
            "dro/per_round_weight_mean": float(weights.mean()) if weights.size else 1.0,
            "dro/per_round_weight_max": float(weights.max()) if weights.size else 1.0,
        }


def group_indices(judge_margins: Sequence[float | None], group_size: int) -> list[list[int]]:
    """The indices of the pairs with a judge margin, in order, cut into consecutive groups of ``group_size``; the
    last group holds the remainder (it may be smaller, down to one pair)."""
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2, got {group_size}")
    judged = [i for i, margin in enumerate(judge_margins) if margin is not None]
    return [judged[k:k + group_size] for k in range(0, len(judged), group_size)]


def solve_per_round(judge_margins: Sequence[float | None], adversary: Adversary, *, beta: float,
                    wdro: WdroSettings) -> PerRoundWeights:
    """One adversary call per group (ceil(#judged pairs / G) in all) and the fixed weights of every pair."""
    n = len(judge_margins)
    a, b, omega = np.ones(n), np.zeros(n), np.ones(n)
    grouped = np.zeros(n, dtype=bool)
    groups = group_indices(judge_margins, wdro.group_size)
    moved = calls = 0
    for members in groups:
        log_xi = losses.wdro_log_xi(torch.tensor([judge_margins[i] for i in members], dtype=torch.float64), beta)
        solution = adversary.solve(log_xi, delta=wdro.delta, rho=wdro.rho, epsilon=wdro.epsilon)
        calls += 1
        size = len(members)
        a[members] = size * solution.surrogate_a
        b[members] = size * solution.surrogate_b
        omega[members] = a[members] + b[members] * log_xi.exp().numpy()
        grouped[members] = True
        moved += int(np.count_nonzero(solution.moved_fraction > 0))
    return PerRoundWeights(surrogate_a=a, surrogate_b=b, judge_weight=omega, grouped=grouped, groups=len(groups),
                           solver_calls=calls, moved_pairs=moved)


__all__ = ["PerRoundWeights", "group_indices", "solve_per_round"]
