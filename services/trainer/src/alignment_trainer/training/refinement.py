"""SPA self-refinement, docs/algorithm.md §3 (Kim et al. 2025, Eq. 9-12): which pairs are flagged as likely mislabelled.

Per training call, for the B pairs of a (micro-)batch:

1. m̃_i = β·[(logp̃(y_w) − logp_ref(y_w)) − (logp̃(y_l) − logp_ref(y_l))] (``detection_margin``), where logp̃ is the
   de-coupled log-prob of logprobs.decoupled_sequence_logps, or the policy's ordinary logp when λ = 0 (DND off).
2. τ = the K-th percentile of m̃ over the most recent ``window`` samples seen BEFORE this batch (a rolling window,
   updated every call), so a pair is judged against earlier pairs only, as in the released code.
3. z_i = 1 if m̃_i ≤ τ; the batch's m̃ then enter the window.
4. During warm-up (optimizer steps < warmup_fraction · total_steps) refinement is off: z = 0 and α = 0 for every
   pair, while the window still fills so that τ is ready when warm-up ends.

The percentile is linear interpolation between order statistics (numpy's and torch.quantile's default): over n
samples sorted ascending x_(0) ≤ … ≤ x_(n−1), position p = (K/100)·(n − 1),
τ = x_(⌊p⌋) + (p − ⌊p⌋)·(x_(⌊p⌋+1) − x_(⌊p⌋)).
It is defined for any n ≥ 1, so refinement works in rounds too short to fill the window. With n = 50 and K = 10,
τ = 0.1·x_(4) + 0.9·x_(5) (0-based), whereas the released code (kingdy2002/SPA, ``confidence_update``) takes
(x_(5) + x_(6))/2, i.e. the mean of the 6th and 7th smallest: one order statistic higher. A new pair from the same
distribution falls at or below x_(k) with probability (k + 1)/(n + 1), so about 11.6% of pairs are flagged here and
12.7% by the released code. The released code also keeps τ = 0 until 50 samples exist; here τ uses what the window
holds (nothing is flagged before the first batch, when the window is empty).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RefinementConfig:
    """SpaParams of alignment.v1 with the paper's defaults (docs/algorithm.md §3)."""

    alpha: float = 0.1
    """Refinement strength α in [0, 1]: weight of the flipped label for flagged pairs."""
    k_percentile: float = 10.0
    """K in (0, 100): pairs at or below the K-th percentile of recent margins are flagged."""
    window: int = 50
    """Number of most recent samples the percentile is taken over."""
    warmup_fraction: float = 0.2
    """Fraction in [0, 1] of the round's optimizer steps with refinement off."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 < self.k_percentile < 100.0:
            raise ValueError(f"k_percentile must be in (0, 100), got {self.k_percentile}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction}")


@dataclass(frozen=True)
class Flags:
    """The refinement decision for one batch: z per pair, the α to use, and τ (None while the window is empty)."""

    z: torch.Tensor  # [B] bool
    alpha: float
    tau: float | None

    def metrics(self) -> dict[str, float]:
        """spa/flagged_frac (share of the batch with z = 1) and spa/tau (absent while undefined)."""
        out = {"spa/flagged_frac": self.z.double().mean().item() if self.z.numel() else 0.0}
        if self.tau is not None:
            out["spa/tau"] = self.tau
        return out


def detection_margin(
    beta: float,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> torch.Tensor:
    """m̃ of §3, detached float64: β·[(chosen − ref_chosen) − (rejected − ref_rejected)].

    chosen/rejected are logp̃ (de-coupled, λ > 0) or the policy's logp (λ = 0, DND off).
    """
    with torch.no_grad():
        return beta * ((chosen.double() - ref_chosen.double()) - (rejected.double() - ref_rejected.double()))


class SelfRefinement:
    """The rolling-window threshold and warm-up of one round (one training job). Not thread-safe; one per job."""

    def __init__(self, config: RefinementConfig, total_steps: int) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.config = config
        self.total_steps = total_steps
        self._window: deque[float] = deque(maxlen=config.window)

    def in_warmup(self, step: int) -> bool:
        """True for optimizer steps (0-based) before warmup_fraction of the round, as TRL's global_step < 0.2·max."""
        return step < self.config.warmup_fraction * self.total_steps

    def threshold(self) -> float | None:
        """τ over the current window; None when it is empty."""
        if not self._window:
            return None
        values = torch.tensor(list(self._window), dtype=torch.float64)
        return torch.quantile(values, self.config.k_percentile / 100.0, interpolation="linear").item()

    def flag(self, margins: torch.Tensor, step: int) -> Flags:
        """Flags the batch with margins m̃ [B] at optimizer step `step`, then adds the margins to the window."""
        margins = margins.detach().double().cpu().reshape(-1)
        tau = self.threshold()
        if self.in_warmup(step) or tau is None:
            z = torch.zeros(margins.shape, dtype=torch.bool)
            alpha = 0.0
        else:
            z = margins <= tau
            alpha = self.config.alpha
        self._window.extend(margins.tolist())
        return Flags(z=z, alpha=alpha, tau=tau)

    def state_dict(self) -> dict:
        """The window, for resumable checkpoints (the config and total_steps come from the job spec)."""
        return {"window": list(self._window)}

    def load_state_dict(self, state: dict) -> None:
        self._window = deque(state["window"], maxlen=self.config.window)
