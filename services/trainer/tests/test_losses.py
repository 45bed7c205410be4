"""losses.py against hand computations in plain Python (math.log/exp), docs/algorithm.md §1, §3-§6."""

from __future__ import annotations

import math

import pytest
import torch

from alignment_trainer.training import losses
from alignment_trainer.training.logprobs import build_pair_batch, policy_pass, reference_pass, split_pairs
from tiny import tiny_llama, tiny_tokenizer

BETA = 0.5
H = [0.7, -1.3, 4.0, 0.0]


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def h_tensor(values=H, requires_grad=False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


def test_margin_is_policy_minus_reference_log_ratio_in_float32():
    pc = torch.tensor([-10.0, -20.0], dtype=torch.bfloat16)
    pr = torch.tensor([-12.0, -18.0], dtype=torch.bfloat16)
    rc = torch.tensor([-11.0, -19.0], dtype=torch.bfloat16)
    rr = torch.tensor([-11.5, -19.5], dtype=torch.bfloat16)
    h = losses.margin(pc, pr, rc, rr)
    assert h.dtype == torch.float32
    assert h.tolist() == [(-10 + 11) - (-12 + 11.5), (-20 + 19) - (-18 + 19.5)]  # [1.5, -2.5]


def test_dpo():
    got = losses.dpo(h_tensor(), BETA)
    assert got.tolist() == pytest.approx([-log_sigmoid(BETA * h) for h in H], rel=1e-12)
    assert got[3].item() == pytest.approx(math.log(2))


def test_cdpo():
    eps = 0.2
    got = losses.cdpo(h_tensor(), BETA, eps)
    want = [-(1 - eps) * log_sigmoid(BETA * h) - eps * log_sigmoid(-BETA * h) for h in H]
    assert got.tolist() == pytest.approx(want, rel=1e-12)


def test_rdpo_formula_unbiasedness_and_not_dpo():
    eps = 0.2
    got = losses.rdpo(h_tensor(), BETA, eps)
    want = [(-(1 - eps) * log_sigmoid(BETA * h) + eps * log_sigmoid(-BETA * h)) / (1 - 2 * eps) for h in H]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    # Chowdhury et al.'s point: averaged over a label flip with probability eps it is the clean DPO loss.
    flipped = losses.rdpo(-h_tensor(), BETA, eps)
    assert ((1 - eps) * got + eps * flipped).tolist() == pytest.approx(losses.dpo(h_tensor(), BETA).tolist())
    # And it is not DPO (the reduction a buggy TRL release had).
    assert (got - losses.dpo(h_tensor(), BETA)).abs().max() > 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.rdpo(h_tensor(), BETA, 0.5)


@pytest.mark.parametrize("beta_prime", [1.0, 0.25])
def test_drdpo(beta_prime):
    got = losses.drdpo(h_tensor(), BETA, beta_prime)
    ell = [-log_sigmoid(BETA * h) for h in H]
    want = -beta_prime * math.log(sum(math.exp(-loss / beta_prime) for loss in ell) / len(ell))
    assert got.dim() == 0 and got.item() == pytest.approx(want, rel=1e-12)
    # Below the mean DPO loss (log-mean-exp of -l is above the mean of -l), tending to it as beta' grows.
    assert got.item() < sum(ell) / len(ell)
    assert losses.drdpo(h_tensor(), BETA, 1e6).item() == pytest.approx(sum(ell) / len(ell), rel=1e-5)


def test_ipo():
    got = losses.ipo(h_tensor(), BETA)
    assert got.tolist() == pytest.approx([(h - 1 / (2 * BETA)) ** 2 for h in H], rel=1e-12)


def test_spa_refined():
    alpha, z = 0.1, [1, 0, 1, 0]
    got = losses.spa_refined(h_tensor(), BETA, torch.tensor(z, dtype=torch.bool), alpha)
    want = [
        -(1 - alpha * zi) * log_sigmoid(BETA * h) - alpha * zi * log_sigmoid(-BETA * h)
        for h, zi in zip(H, z, strict=True)
    ]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    # Unflagged pairs, or alpha = 0 (warm-up), are plain DPO.
    assert losses.spa_refined(h_tensor(), BETA, torch.zeros(4), alpha).tolist() == pytest.approx(
        losses.dpo(h_tensor(), BETA).tolist()
    )
    assert losses.spa_refined(h_tensor(), BETA, torch.ones(4), 0.0).tolist() == pytest.approx(
        losses.dpo(h_tensor(), BETA).tolist()
    )


def test_wdro_log_xi_is_detached_float64():
    h = h_tensor(requires_grad=True).float()
    log_xi = losses.wdro_log_xi(h, BETA)
    assert log_xi.dtype == torch.float64 and not log_xi.requires_grad
    assert log_xi.tolist() == pytest.approx([log_sigmoid(BETA * v) for v in H], rel=1e-6)


def test_wdro_surrogate_value_gradient_and_clipping():
    delta = 0.01
    hs = [0.7, -1.3, 4.0, -12.0]  # the last: xi = sigma(-6) = 0.0025 < delta, clipped by the solver
    a, b = [0.25, 0.1, 0.25, 0.05], [0.0, 0.9, 0.0, 0.3]
    h = h_tensor(hs, requires_grad=True)
    a_t, b_t = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    got = losses.wdro_surrogate(h, BETA, a_t, b_t, delta)
    # The clipped pair contributes nothing.
    want = sum(
        ai * -log_sigmoid(BETA * hi) - bi * sigmoid(BETA * hi) for hi, ai, bi in zip(hs[:3], a[:3], b[:3], strict=True)
    )
    assert got.dim() == 0 and got.item() == pytest.approx(want, rel=1e-12)
    got.backward()
    # d/dh [a·(−log σ(βh)) − b·σ(βh)] = −aβσ(−βh) − bβσ(βh)σ(−βh); zero for the clipped pair.
    want_grad = [
        -ai * BETA * sigmoid(-BETA * hi) - bi * BETA * sigmoid(BETA * hi) * sigmoid(-BETA * hi)
        for hi, ai, bi in zip(hs[:3], a[:3], b[:3], strict=True)
    ] + [0.0]
    assert h.grad.tolist() == pytest.approx(want_grad, rel=1e-12)
    with pytest.raises(ValueError, match="solve of exactly these pairs"):
        losses.wdro_surrogate(h, BETA, torch.tensor(a[:3]), torch.tensor(b[:3]), delta)


def test_wdro_sr_combines_refined_flagged_and_adversarial_unflagged():
    delta, alpha = 0.01, 0.1
    z = [True, False, False, True]
    a_u, b_u = [0.3, 0.5], [0.4, 0.0]  # coefficients of the solve over pairs 1 and 2
    a_u_t, b_u_t = torch.tensor(a_u, dtype=torch.float64), torch.tensor(b_u, dtype=torch.float64)
    got = losses.wdro_sr(h_tensor(), BETA, torch.tensor(z), alpha, a_u_t, b_u_t, delta)
    refined = [-(1 - alpha) * log_sigmoid(BETA * h) - alpha * log_sigmoid(-BETA * h) for h in (H[0], H[3])]
    adversarial = sum(
        ai * -log_sigmoid(BETA * h) - bi * sigmoid(BETA * h) for h, ai, bi in zip(H[1:3], a_u, b_u, strict=True)
    )
    assert got.item() == pytest.approx(sum(refined) / 4 + (2 / 4) * adversarial, rel=1e-12)

    # No flags (SR warm-up): exactly the W-DRO surrogate over all pairs.
    a = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    b = torch.tensor([0.5, 0.0, 0.0, 0.1], dtype=torch.float64)
    none = losses.wdro_sr(h_tensor(), BETA, torch.zeros(4, dtype=torch.bool), alpha, a, b, delta)
    assert none.item() == pytest.approx(losses.wdro_surrogate(h_tensor(), BETA, a, b, delta).item(), rel=1e-12)
    # All flagged: the mean refined loss, no solve.
    empty = torch.zeros(0, dtype=torch.float64)
    every = losses.wdro_sr(h_tensor(), BETA, torch.ones(4, dtype=torch.bool), alpha, empty, empty, delta)
    assert every.item() == pytest.approx(losses.spa_refined(h_tensor(), BETA, torch.ones(4), alpha).mean().item())
    with pytest.raises(ValueError, match="every pair is flagged"):
        losses.wdro_sr(h_tensor(), BETA, torch.ones(4, dtype=torch.bool), alpha, a, b, delta)


def test_trl_metrics():
    pc, pr = torch.tensor([-10.0, -30.0]), torch.tensor([-12.0, -25.0])
    rc, rr = torch.tensor([-11.0, -29.0]), torch.tensor([-12.0, -24.0])
    got = losses.trl_metrics(0.1, pc, pr, rc, rr)
    # rewards = beta (logp - logp_ref): chosen [0.1, -0.1], rejected [0.0, -0.1]
    assert got["rewards/chosen"] == pytest.approx(0.0)
    assert got["rewards/rejected"] == pytest.approx(-0.05)
    assert got["rewards/margins"] == pytest.approx(0.05)
    assert got["rewards/accuracies"] == 0.5  # pair 2 is a tie, which TRL does not count
    assert got["logps/chosen"] == pytest.approx(-20.0)
    assert got["logps/rejected"] == pytest.approx(-18.5)


def batch_loss(name: str, h: torch.Tensor) -> torch.Tensor:
    if name == "drdpo":
        return losses.drdpo(h, 0.1, 1.0)
    per_pair = {
        "dpo": lambda: losses.dpo(h, 0.1),
        "cdpo": lambda: losses.cdpo(h, 0.1, 0.1),
        "rdpo": lambda: losses.rdpo(h, 0.1, 0.1),
        "ipo": lambda: losses.ipo(h, 0.1),
        "spa_refined": lambda: losses.spa_refined(h, 0.1, torch.tensor([True, False]), 0.1),
    }[name]
    return per_pair().mean()


@pytest.mark.parametrize("loss_name", ["dpo", "cdpo", "rdpo", "ipo", "spa_refined", "drdpo"])
def test_a_few_steps_on_the_tiny_model_raise_the_margin(loss_name):
    """Training end to end (batch -> log-probs -> loss -> AdamW) moves the policy towards the chosen responses."""
    tok = tiny_tokenizer()
    policy, ref = tiny_llama(vocab_size=len(tok), seed=7), tiny_llama(vocab_size=len(tok), seed=7)
    batch = build_pair_batch(tok, ["Sky colour?", "2+2?"], ["Blue.", "Four."], ["Green.", "Five."], max_length=64, strings="chat-template")
    ref_c, ref_r = split_pairs(reference_pass(ref, batch, keep_logits=False).logps)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    margins = []
    for _ in range(4):
        pc, pr = split_pairs(policy_pass(policy, batch).logps)
        h = losses.margin(pc, pr, ref_c, ref_r)
        margins.append(h.detach().mean().item())
        loss = batch_loss(loss_name, h)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert margins[0] == pytest.approx(0.0, abs=1e-5)  # policy == reference at the start
    assert margins[-1] > 1.0
