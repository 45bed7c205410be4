"""Preference losses of docs/algorithm.md §1 and §3-§6, one small function each, on float32/float64 margins.

Every loss takes the DPO margin h of §1 (``margin``): h = [logp_θ(y_w) − logp_ref(y_w)] − [logp_θ(y_l) − logp_ref(y_l)].

Reductions differ, by what each loss is:
  * dpo, cdpo, rdpo, ipo, spa_refined return one loss per pair, shape [B]; the batch loss is their mean.
  * drdpo, wdro_surrogate and wdro_sr couple the pairs of a batch and return the batch loss (a scalar). For the two
    W-DRO losses "the batch" is exactly the set of pairs of one DroSolver call (the solver's weights sum to 1 over
    them): with gradient accumulation, either solve once per micro-batch and treat the result like a mean, or call
    them with the whole step's pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def margin(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> torch.Tensor:
    """h of §1 (DPO, Rafailov et al. 2023, Eq. 3-6), in at least float32."""
    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return h if h.dtype in (torch.float32, torch.float64) else h.float()


def dpo(h: torch.Tensor, beta: float) -> torch.Tensor:
    """§1 DPO (Rafailov et al. 2023): −log σ(βh), per pair."""
    return -F.logsigmoid(beta * h)


def cdpo(h: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """§5 conservative DPO / label smoothing (Mitchell 2023): −(1−ε)·log σ(βh) − ε·log σ(−βh), per pair."""
    _check_smoothing(label_smoothing)
    return -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)


def rdpo(h: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """§5 robust DPO (Chowdhury et al. 2024): [−(1−ε)·log σ(βh) + ε·log σ(−βh)] / (1−2ε), per pair.

    Unbiased under labels flipped with probability ε: (1−ε)·rdpo(h) + ε·rdpo(−h) = dpo(h). Note the PLUS before
    ε·log σ(−βh): the flipped-label term is subtracted, where cDPO adds it. Implemented from the formula, not ported
    from TRL, whose `robust` loss reduced to plain DPO in one release.
    """
    _check_smoothing(label_smoothing)
    clean = -(1 - label_smoothing) * F.logsigmoid(beta * h)
    flipped = -label_smoothing * F.logsigmoid(-beta * h)
    return (clean - flipped) / (1 - 2 * label_smoothing)


def drdpo(h: torch.Tensor, beta: float, beta_prime: float = 1.0) -> torch.Tensor:
    """§5 Dr. DPO (Wu et al. 2024): −β′·log mean_i exp(−ℓ_i/β′) with ℓ_i the DPO loss; the batch loss (scalar).

    As β′ → ∞ it tends to the mean DPO loss; small β′ concentrates on the easiest pairs (down-weights likely-noisy,
    high-loss ones): the gradient weight of pair i is softmax(−ℓ/β′)_i.
    """
    if beta_prime <= 0:
        raise ValueError(f"beta_prime must be > 0, got {beta_prime}")
    losses = dpo(h, beta)
    return -beta_prime * (torch.logsumexp(-losses / beta_prime, dim=0) - math.log(losses.numel()))


def ipo(h: torch.Tensor, beta: float) -> torch.Tensor:
    """IPO (Azar et al. 2023; §5 "welcome, not required"): (h − 1/(2β))², per pair, with β as IPO's τ.

    The paper's form on summed log-ratios (TRL ≤ 0.28). TRL ≥ 0.29 divides the log-ratios by token counts first;
    this module keeps logp a sum everywhere (docs/algorithm.md notation).
    """
    return (h - 1 / (2 * beta)) ** 2


def spa_refined(h: torch.Tensor, beta: float, z: torch.Tensor, alpha: float) -> torch.Tensor:
    """§3 SPA self-refinement (Kim et al. 2025, Eq. 9-10): −(1−αz)·log σ(βh) − αz·log σ(−βh), per pair.

    z (bool or 0/1, [B]) flags pairs whose de-coupled margin fell at or below the threshold (refinement.py); they are
    label-smoothed towards the flipped preference with weight α. Unflagged pairs get plain DPO.
    """
    az = alpha * z.to(device=h.device, dtype=h.dtype)
    return -(1 - az) * F.logsigmoid(beta * h) - az * F.logsigmoid(-beta * h)


def wdro_log_xi(h: torch.Tensor, beta: float) -> torch.Tensor:
    """§4 log ξ_i = log σ(βh_i), detached, float64: the DroSolver's input (log space keeps tiny ξ exact)."""
    return F.logsigmoid(beta * h.detach().double())


def wdro_surrogate(
    h: torch.Tensor,
    beta: float,
    surrogate_a: torch.Tensor,
    surrogate_b: torch.Tensor,
    delta: float,
) -> torch.Tensor:
    """§4 W-DRO Danskin surrogate: Σ_i [a_i·(−log σ(βh_i)) − b_i·σ(βh_i)]; the batch loss (scalar).

    a_i = w_i(1 − m_i) and b_i = w_i·m_i·λ* come from the DroSolver for exactly these pairs (a solve of
    wdro_log_xi(h)) and are constants here, so the gradient equals ∇_θ F, F the worst-case expected loss, at the
    current θ and fixed radius ε. Pairs with ξ outside [δ, 1−δ] are clipped by the solver, F does not move with
    them, and they get no gradient here either. The value differs from F by a constant; log the solver's value.
    """
    if surrogate_a.shape != h.shape or surrogate_b.shape != h.shape:
        raise ValueError(
            f"surrogate coefficients {tuple(surrogate_a.shape)}/{tuple(surrogate_b.shape)} do not match h "
            f"{tuple(h.shape)}: they must come from a solve of exactly these pairs"
        )
    log_xi = F.logsigmoid(beta * h)
    # Same clip as the solver, decided on the detached value: clipped pairs are constants of F.
    inside = ((log_xi.detach() >= math.log(delta)) & (log_xi.detach() <= math.log1p(-delta))).to(h.dtype)
    a = surrogate_a.to(device=h.device, dtype=h.dtype)
    b = surrogate_b.to(device=h.device, dtype=h.dtype)
    return (inside * (a * -log_xi - b * log_xi.exp())).sum()


def wdro_sr(
    h: torch.Tensor,
    beta: float,
    z: torch.Tensor,
    alpha: float,
    unflagged_a: torch.Tensor,
    unflagged_b: torch.Tensor,
    delta: float,
) -> torch.Tensor:
    """§6 `wdro-sr`: SR-flagged pairs get the refined loss, the adversary re-weights the others; the batch loss.

    With N pairs, S the flagged set (z = 1) and U the rest, n_U = |U|:

        L = (1/N)·Σ_{i∈S} spa_refined_i  +  (n_U/N)·wdro_surrogate(h_U; a, b)

    i.e. each group keeps its share of the batch, and U's share is its worst-case expected loss F_U over a
    Wasserstein ball around U's own empirical distribution (the DroSolver is called with wdro_log_xi(h[~z]) only;
    unflagged_a/_b are its coefficients, in the order of h[~z]); ∇L = (1/N)·Σ_S ∇spa_refined + (n_U/N)·∇F_U.
    Flagged pairs stay out of the ball: they are suspected label noise whose loss refinement already smooths towards
    the flipped label, and the adversary, which moves the lowest-ξ pairs first, would otherwise spend its budget on
    them.
    With no flagged pair (e.g. during SR warm-up) this is wdro_surrogate; with all pairs flagged it is mean
    spa_refined and no solve is needed (pass empty coefficient tensors).
    """
    z = z.to(device=h.device, dtype=torch.bool)
    n, n_u = h.numel(), int((~z).sum())
    total = spa_refined(h[z], beta, z[z], alpha).sum() / n
    if n_u:
        total = total + (n_u / n) * wdro_surrogate(h[~z], beta, unflagged_a, unflagged_b, delta)
    elif unflagged_a.numel() or unflagged_b.numel():
        raise ValueError("every pair is flagged, but solver coefficients were given for unflagged pairs")
    return total


def trl_metrics(
    beta: float,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> dict[str, float]:
    """Batch metrics under TRL DPOTrainer's names and definitions (rewards = β·(logp_θ − logp_ref), batch means)."""
    with torch.no_grad():
        chosen = beta * (policy_chosen.double() - ref_chosen.double())
        rejected = beta * (policy_rejected.double() - ref_rejected.double())
        return {
            "rewards/chosen": chosen.mean().item(),
            "rewards/rejected": rejected.mean().item(),
            "rewards/margins": (chosen - rejected).mean().item(),
            # Strictly greater, as TRL: a tie (e.g. policy == reference at step 0) does not count.
            "rewards/accuracies": (chosen > rejected).double().mean().item(),
            "logps/chosen": policy_chosen.double().mean().item(),
            "logps/rejected": policy_rejected.double().mean().item(),
        }


def _check_smoothing(eps: float) -> None:
    # At 0.5 both labels weigh the same (cDPO has no signal left, rDPO divides by zero).
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {eps}")
