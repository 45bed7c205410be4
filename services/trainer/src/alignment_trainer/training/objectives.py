"""One optimizer step's forward and backward passes: the SFT objective and the preference objectives of
docs/algorithm.md §1 and §3-§5. No optimizer, scheduler, files or gRPC here (runner.py owns those; the W-DRO adversary is
an adversary.Adversary, docs/algorithm.md), so each objective can be tested on a tiny model directly.

A step is a list of micro-batches (gradient accumulation). Each ``step`` call leaves the step's gradient in the
parameters' ``.grad`` (scaled so that it is the gradient of the step's loss, whatever the micro-batch split) and
returns the loss value and the step's metrics under TRL's names.

Preference losses come in two kinds (losses.py):
  * per pair (dpo, cdpo, rdpo, ipo, spa): every micro-batch is forwarded and back-propagated on its own, its mean
    loss weighted by its share of the step's pairs. SPA's threshold is updated per micro-batch, as in SPA's
    released code (which ran micro-batches of one pair).
  * coupled over the step (wdro, wdro-sr, drdpo): the loss of pair i depends on the other pairs (the adversary's
    budget, Dr. DPO's log-mean-exp), and §4 asks for ONE DroSolver call per optimizer step on that step's ξ. With one
    micro-batch the step is a single forward/backward. With several, a first pass computes every pair's margin h
    without gradient, the step's loss L(h) and its derivative g_i = ∂L/∂h_i (solver coefficients and SR flags are
    constants of L, so this is exact); a second pass back-propagates Σ_i g_i·h_i micro-batch by micro-batch, whose
    gradient is Σ_i g_i·∇h_i = ∇L. The extra cost is one policy forward per step without gradient.
    With the per-round adversary (docs/algorithm.md §7; per_round_adversary.py) the W-DRO losses take fixed
    per-pair coefficients, solved once before the first step (``solve_per_round``), and call no adversary in a step.
The reference model is run once per micro-batch, under no_grad, and its log-probs are reused by the second pass.
Across the processes of a data-parallel job, distributed_objective.py runs these objectives on the gathered pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from alignment_trainer.config import ADVERSARY_PER_ROUND, SPA_LOSSES, WDRO_LOSSES, PreferenceTask
from alignment_trainer.training import losses
from alignment_trainer.training.adversary import Adversary
from alignment_trainer.training.logprobs import (
    PairBatch,
    decoupled_sequence_logps,
    forward_logits,
    response_positions,
    sequence_logps,
    split_pairs,
    token_logps,
)
from alignment_trainer.training.per_round_adversary import PerRoundWeights, solve_per_round
from alignment_trainer.training.refinement import Flags, RefinementConfig, SelfRefinement, detection_margin

COUPLED_LOSSES = frozenset({"wdro", "wdro-sr", "drdpo"})


def autocast_context(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA when asked; a no-op on the CPU (trainer.proto: "bf16 autocast on GPU; ignored on
    CPU"). Log-probs are computed from the logits in float32 either way (logprobs.py)."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@dataclass
class StepResult:
    loss: float
    metrics: dict[str, float]
    tokens: int  # non-padding tokens the policy processed in this step


# ----------------------------------------------------------------------------------------------------------- SFT


@dataclass(frozen=True)
class SftBatch:
    """Right-padded prompt+response sequences; response_mask marks the response tokens (EOS included)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    n_truncated: int

    def to(self, device) -> SftBatch:
        return SftBatch(self.input_ids.to(device), self.attention_mask.to(device), self.response_mask.to(device),
                        self.n_truncated)


def collate_sft(examples: Sequence[tuple[Sequence[int], Sequence[int]]], *, pad_token_id: int,
                max_length: int) -> SftBatch:
    """(prompt_ids, response_ids) pairs -> SftBatch. Like logprobs.collate_pairs, an over-long example keeps its
    prompt and loses the end of its response; callers drop examples whose prompt leaves no room at all."""
    rows = []
    truncated = 0
    for prompt, response in examples:
        room = max_length - len(prompt)
        if room < 1:
            raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in max_length {max_length}")
        if len(response) > room:
            response = response[:room]
            truncated += 1
        rows.append((list(prompt), list(response)))
    width = max(len(p) + len(r) for p, r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    response_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (p, r) in enumerate(rows):
        input_ids[i, : len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
        attention_mask[i, : len(p) + len(r)] = 1
        response_mask[i, len(p): len(p) + len(r)] = True
    return SftBatch(input_ids, attention_mask, response_mask, truncated)


class SftObjective:
    """Mean negative log-likelihood of the response tokens (prompt masked), token-weighted over the whole step, so
    gradient accumulation gives the same gradient as one big batch. Metrics: loss, mean_token_accuracy (TRL SFT)."""

    def __init__(self, model, *, device: torch.device, bf16: bool, backward=None) -> None:
        self.model = model
        self.device = device
        self.bf16 = bf16
        # accelerate's Accelerator.backward under `accelerate launch`; plain Tensor.backward in-process.
        self._backward = backward or torch.Tensor.backward

    def step(self, micro_batches: Sequence[SftBatch], step: int) -> StepResult:
        n_response = sum(int(mb.response_mask[:, 1:].sum()) for mb in micro_batches)
        nll_total = 0.0
        correct = 0
        tokens = 0
        for mb in micro_batches:
            mb = mb.to(self.device)
            with autocast_context(self.device, self.bf16):
                logits = self.model(input_ids=mb.input_ids, attention_mask=mb.attention_mask, use_cache=False).logits
            mask = mb.response_mask[:, 1:]
            nll = -(token_logps(logits, mb.input_ids) * mask).sum()
            self._backward(nll / n_response)
            with torch.no_grad():
                nll_total += nll.item()
                correct += int(((logits[:, :-1].argmax(-1) == mb.input_ids[:, 1:]) & mask).sum())
            tokens += int(mb.attention_mask.sum())
        return StepResult(
            loss=nll_total / n_response,
            metrics={"mean_token_accuracy": correct / n_response},
            tokens=tokens,
        )


# ---------------------------------------------------------------------------------------------------- preference


@dataclass
class _Scored:
    """A micro-batch's log-probs: policy (with or without graph), reference, and SR detection margins."""

    policy_chosen: torch.Tensor
    policy_rejected: torch.Tensor
    ref_chosen: torch.Tensor
    ref_rejected: torch.Tensor
    detection: torch.Tensor | None  # m̃ of §3 when the loss uses self-refinement
    logits_chosen_mean: float  # sum of vocabulary-mean logits over chosen response positions (for logits/chosen)
    logits_rejected_mean: float
    n_chosen_positions: int
    n_rejected_positions: int

    def h(self) -> torch.Tensor:
        return losses.margin(self.policy_chosen, self.policy_rejected, self.ref_chosen, self.ref_rejected)


class PreferenceObjective:
    """DPO and its variants over (policy, reference) with one configured loss (docs/algorithm.md §1, §3-§5)."""

    def __init__(self, model, ref_model, task: PreferenceTask, *, total_steps: int, device: torch.device,
                 bf16: bool, adversary: Adversary | None = None, backward=None, solves: bool = True) -> None:
        self.model = model
        self._backward = backward or torch.Tensor.backward
        self.ref_model = ref_model
        self.task = task
        self.device = device
        self.bf16 = bf16
        self.adversary = adversary
        # solves=False: another process calls the adversary for this one (distributed_objective.py).
        if task.loss in WDRO_LOSSES and adversary is None and solves:
            raise ValueError(f"the {task.loss!r} loss needs an adversary (a DroSolver client)")
        self.per_round_schedule = (task.loss in WDRO_LOSSES and task.wdro is not None
                                   and task.wdro.schedule == ADVERSARY_PER_ROUND)
        self.per_round: PerRoundWeights | None = None
        self.refinement = None
        if task.loss in SPA_LOSSES:
            s = task.spa
            self.refinement = SelfRefinement(
                RefinementConfig(alpha=s.alpha, k_percentile=s.k_percentile, window=s.window,
                                 warmup_fraction=s.warmup_fraction),
                total_steps=total_steps)

    # -- state (resumable checkpoints) --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"refinement": self.refinement.state_dict() if self.refinement else None}

    def load_state_dict(self, state: dict) -> None:
        if self.refinement is not None:
            self.refinement.load_state_dict(state["refinement"])

    # -- the per-round adversary --------------------------------------------------------------------------------

    def solve_per_round(self, judge_margins: Sequence[float | None]) -> None:
        """Per-round schedule only: one adversary call per group of the judged pairs (per_round_adversary.py), before
        the first step; ``judge_margins`` are indexed like the job's examples (None: not judged)."""
        if not self.per_round_schedule:
            raise ValueError(f"the {self.task.loss!r} job does not use the per-round adversary schedule")
        self.per_round = solve_per_round(judge_margins, self.adversary, beta=self.task.beta, wdro=self.task.wdro)

    # -- the step -----------------------------------------------------------------------------------------------

    def step(self, micro_batches: Sequence[PairBatch], step: int,
             pair_indices: Sequence[int] | None = None) -> StepResult:
        """One optimizer step's passes; ``pair_indices`` (the example index of every pair, micro-batch after
        micro-batch) are needed by the per-round schedule, whose weights are per example."""
        if self.per_round_schedule and (self.per_round is None or pair_indices is None):
            raise ValueError("the per-round adversary needs solve_per_round before the first step and the step's "
                             "pair_indices")
        indices = list(pair_indices) if pair_indices is not None else None
        n_pairs = sum(mb.n_pairs for mb in micro_batches)
        if indices is not None and len(indices) != n_pairs:
            raise ValueError(f"{len(indices)} pair_indices for a step of {n_pairs} pairs")
        tokens = sum(int(mb.attention_mask.sum()) for mb in micro_batches)
        scored: list[_Scored] = []
        extra: list[tuple[dict[str, float], int]] = []  # (metrics of one loss evaluation, its number of pairs)
        if self.task.loss in COUPLED_LOSSES and len(micro_batches) > 1:
            loss = self._two_pass(micro_batches, step, scored, extra, indices)
        else:
            # One micro-batch, or a per-pair loss: each micro-batch is its own forward/backward.
            loss = 0.0
            offset = 0
            for mb in micro_batches:
                mb = mb.to(self.device)
                s = self._score(mb, with_grad=True)
                mb_indices = indices[offset: offset + mb.n_pairs] if indices is not None else None
                offset += mb.n_pairs
                value, metrics = self._loss(s.h(), s.detection, step, mb_indices)
                weight = mb.n_pairs / n_pairs
                self._backward(value * weight)
                loss += value.item() * weight
                scored.append(detached(s))
                extra.append((metrics, mb.n_pairs))
        return StepResult(loss=loss, metrics=self._metrics(scored, extra), tokens=tokens)

    def _two_pass(self, micro_batches: Sequence[PairBatch], step: int, scored: list[_Scored],
                  extra: list[tuple[dict[str, float], int]], indices: list[int] | None) -> float:
        with torch.no_grad():
            for mb in micro_batches:
                scored.append(self._score(mb.to(self.device), with_grad=False))
        h = torch.cat([s.h() for s in scored]).detach().requires_grad_(True)
        detection = torch.cat([s.detection for s in scored]) if scored[0].detection is not None else None
        value, metrics = self._loss(h, detection, step, indices)
        (g,) = torch.autograd.grad(value, h)
        extra.append((metrics, h.numel()))
        self._replay(micro_batches, scored, g)
        return value.item()

    def _replay(self, micro_batches: Sequence[PairBatch], scored: list[_Scored], g: torch.Tensor) -> None:
        """The second pass: back-propagates Σ_i g_i·h_i micro-batch by micro-batch (g: one coefficient per pair, in
        micro-batch order; the reference log-probs of ``scored`` are reused)."""
        offset = 0
        for mb, s in zip(micro_batches, scored):
            mb = mb.to(self.device)
            with autocast_context(self.device, self.bf16):
                logits = forward_logits(self.model, mb)
            pc, pr = split_pairs(sequence_logps(logits, mb.input_ids, mb.response_mask))
            h_mb = losses.margin(pc, pr, s.ref_chosen, s.ref_rejected)
            self._backward((g[offset: offset + mb.n_pairs].to(h_mb.dtype) * h_mb).sum())
            offset += mb.n_pairs

    def _score(self, mb: PairBatch, *, with_grad: bool) -> _Scored:
        dnd = self.refinement is not None and self.task.spa.dnd_lambda > 0
        with torch.no_grad():
            if mb.ref_logps is not None and not dnd:  # computed once per dataset (reference_cache.py)
                ref_logits, (rc, rr) = None, split_pairs(mb.ref_logps)
            else:
                with autocast_context(self.device, self.bf16):
                    ref_logits = forward_logits(self.ref_model, mb)
                rc, rr = split_pairs(sequence_logps(ref_logits, mb.input_ids, mb.response_mask))
            if not dnd:
                ref_logits = None  # only DND needs them; freed before the policy's logits exist
        with torch.enable_grad() if with_grad else torch.no_grad():
            with autocast_context(self.device, self.bf16):
                logits = forward_logits(self.model, mb)
            pc, pr = split_pairs(sequence_logps(logits, mb.input_ids, mb.response_mask))
        detection = None
        if self.refinement is not None:
            if dnd:
                mixed = decoupled_sequence_logps(logits.detach(), ref_logits, mb.input_ids, mb.response_mask,
                                                 self.task.spa.dnd_lambda)
                mc, mr = split_pairs(mixed)
            else:
                mc, mr = pc.detach(), pr.detach()
            detection = detection_margin(self.task.beta, mc, mr, rc, rr)
        with torch.no_grad():
            # TRL's logits/chosen: the mean logit at the positions that predict response tokens.
            pos = response_positions(logits, mb.response_mask)
            vocab_mean = logits.detach()[:, :-1].float().mean(-1) * pos
            n = mb.n_pairs
            lc, lr = vocab_mean[:n].sum().item(), vocab_mean[n:].sum().item()
            nc, nr = int(pos[:n].sum()), int(pos[n:].sum())
        return _Scored(pc, pr, rc, rr, detection, lc, lr, nc, nr)

    def _loss(self, h: torch.Tensor, detection: torch.Tensor | None, step: int,
              indices: list[int] | None) -> tuple[torch.Tensor, dict]:
        """The configured loss of these pairs (example ``indices``, for the per-round weights) as a scalar (a mean
        over them, or their coupled batch loss)."""
        t = self.task
        metrics: dict[str, float] = {}
        flags: Flags | None = None
        if self.refinement is not None:
            flags = self.refinement.flag(detection, step)
            metrics.update(flags.metrics())
        if t.loss == "dpo":
            return losses.dpo(h, t.beta).mean(), metrics
        if t.loss == "cdpo":
            return losses.cdpo(h, t.beta, t.label_smoothing).mean(), metrics
        if t.loss == "rdpo":
            return losses.rdpo(h, t.beta, t.label_smoothing).mean(), metrics
        if t.loss == "ipo":
            return losses.ipo(h, t.beta).mean(), metrics
        if t.loss == "drdpo":
            return losses.drdpo(h, t.beta, t.drdpo_beta_prime), metrics
        if t.loss == "spa":
            return losses.spa_refined(h, t.beta, flags.z, flags.alpha).mean(), metrics
        w = t.wdro
        if t.loss == "wdro" and self.per_round is not None:
            a, b = self.per_round.coefficients(indices, h)
            return losses.wdro_surrogate(h, t.beta, a, b, w.delta), metrics
        if t.loss == "wdro":
            sol = self.adversary.solve(losses.wdro_log_xi(h, t.beta), delta=w.delta, rho=w.rho, epsilon=w.epsilon)
            metrics.update(sol.metrics())
            return losses.wdro_surrogate(h, t.beta, sol.surrogate_a_tensor(h), sol.surrogate_b_tensor(h),
                                         w.delta), metrics
        if t.loss == "wdro-sr":
            z = flags.z.to(h.device)
            empty = torch.zeros(0, dtype=h.dtype, device=h.device)
            a = b = empty
            if bool((~z).any()) and self.per_round is not None:
                # Per round: the unflagged pairs keep their fixed weights, solved before any flag existed.
                unflagged = [i for i, flagged in zip(indices, z.tolist()) if not flagged]
                a, b = self.per_round.coefficients(unflagged, h)
            elif bool((~z).any()):
                # §6 wdro-sr: the adversary's ball is around the pairs refinement did not flag.
                sol = self.adversary.solve(losses.wdro_log_xi(h[~z], t.beta), delta=w.delta, rho=w.rho,
                                     epsilon=w.epsilon)
                metrics.update(sol.metrics())
                a, b = sol.surrogate_a_tensor(h), sol.surrogate_b_tensor(h)
            return losses.wdro_sr(h, t.beta, z, flags.alpha, a, b, w.delta), metrics
        raise ValueError(f"unknown loss {t.loss!r}")

    def _metrics(self, scored: list[_Scored], extra: list[tuple[dict[str, float], int]]) -> dict[str, float]:
        def cat(name: str) -> torch.Tensor:
            return torch.cat([getattr(s, name).detach() for s in scored])

        metrics = losses.trl_metrics(self.task.beta, cat("policy_chosen"), cat("policy_rejected"),
                                     cat("ref_chosen"), cat("ref_rejected"))
        nc = sum(s.n_chosen_positions for s in scored)
        nr = sum(s.n_rejected_positions for s in scored)
        metrics["logits/chosen"] = sum(s.logits_chosen_mean for s in scored) / max(nc, 1)
        metrics["logits/rejected"] = sum(s.logits_rejected_mean for s in scored) / max(nr, 1)
        # Several SR calls in one step (per-pair losses over micro-batches): the flagged share over all of them and
        # the latest τ. The solver is called at most once per step, so its metrics pass through unchanged.
        for m, _ in extra:
            metrics.update(m)
        if self.per_round is not None:
            metrics.update(self.per_round.metrics())
        flagged = [(m["spa/flagged_frac"], n) for m, n in extra if "spa/flagged_frac" in m]
        if flagged:
            metrics["spa/flagged_frac"] = sum(f * n for f, n in flagged) / sum(n for _, n in flagged)
        return metrics


def detached(s: _Scored) -> _Scored:
    """The micro-batch's scores without the policy's graph (kept for the step's metrics)."""
    return _Scored(s.policy_chosen.detach(), s.policy_rejected.detach(), s.ref_chosen, s.ref_rejected, s.detection,
                   s.logits_chosen_mean, s.logits_rejected_mean, s.n_chosen_positions, s.n_rejected_positions)


__all__ = [
    "COUPLED_LOSSES",
    "PreferenceObjective",
    "SftBatch",
    "SftObjective",
    "StepResult",
    "autocast_context",
    "collate_sft",
    "detached",
]
