"""The preference objectives of objectives.py in one process of a data-parallel job (DDP or FSDP through accelerate),
with the gradient of the single-process step over the union of the processes' shards (docs/algorithm.md, "Several
processes").

Every loss is a function L(h) of the step's margins h, and ∇_θ L = Σ_i g_i·∇_θ h_i with g_i = ∂L/∂h_i, where the
adversary's coefficients and the SR flags are constants of L (the envelope argument of §4). So a step is, per round:
  1. each process computes the margins h (and SR's detection margins m̃) of its own pairs;
  2. the collective gathers them into the step's batch order (collective.py), identical on every process;
  3. the main process alone evaluates L on the gathered pairs: flags them (SR), calls the adversary once (the
     DroSolver over gRPC, or any adversary.Adversary), and takes g = ∂L/∂h; it broadcasts (L, metrics, g), so every
     process gets the bit-identical solution;
  4. each process back-propagates W·w·Σ_{i local} g_i·h_i (W processes, w the round's share of the step's pairs):
     DDP and FSDP average the processes' gradients, so the step's gradient is Σ_{i in the batch} w·g_i·∇h_i.
A round is the whole step for the coupled losses (wdro, wdro-sr, drdpo; one adversary call per step, §4) and one
micro-batch of every process for the per-pair losses (SPA's threshold moves per micro-batch, refinement.py). The SR
window is updated with the gathered m̃ on every process, so it is the same everywhere (and in a checkpoint). A round
of one micro-batch keeps its graph from step 1 to step 4; a round of several replays them (objectives.py's second
pass). Pairs a process only repeats (collective.REPEAT) get g = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from alignment_trainer.training.collective import Collective, StepLayout
from alignment_trainer.training.logprobs import PairBatch
from alignment_trainer.training.objectives import COUPLED_LOSSES, PreferenceObjective, StepResult, detached


class DistributedPreferenceObjective(PreferenceObjective):
    """PreferenceObjective across the processes of ``collective``; only the main process needs an adversary."""

    def __init__(self, model, ref_model, task, *, collective: Collective, **kwargs) -> None:
        super().__init__(model, ref_model, task, solves=collective.is_main, **kwargs)
        self.collective = collective

    def solve_per_round(self, judge_margins: Sequence[float | None]) -> None:
        """The per-round weights, solved by the main process and broadcast (one set of adversary calls per job)."""
        if self.collective.is_main:
            super().solve_per_round(judge_margins)
        elif not self.per_round_schedule:
            raise ValueError(f"the {self.task.loss!r} job does not use the per-round adversary schedule")
        self.per_round = self.collective.broadcast(self.per_round)

    def step(self, micro_batches: Sequence[PairBatch], step: int, pair_indices: Sequence[int] | None = None,
             layout: StepLayout | None = None) -> StepResult:
        """One optimizer step over this process's ``micro_batches``, whose pairs sit at ``layout.positions`` of the
        step's batch (``pair_indices`` is implied by the layout and not used). Collective: every process calls it."""
        if layout is None:
            raise ValueError("a step across processes needs the step's layout (collective.StepLayout)")
        n_local = sum(mb.n_pairs for mb in micro_batches)
        if len(layout.positions) != n_local:
            raise ValueError(f"{len(layout.positions)} layout positions for a step of {n_local} pairs")
        if self.per_round_schedule and self.per_round is None:
            raise ValueError("the per-round adversary needs solve_per_round before the first step")
        tokens = sum(int(mb.attention_mask.sum()) for mb in micro_batches)
        if self.task.loss in COUPLED_LOSSES:
            rounds = [list(micro_batches)]
        else:
            rounds = [[mb] for mb in micro_batches]
        scored, extra = [], []
        loss = 0.0
        offset = 0
        for batches in rounds:
            n_round_local = sum(mb.n_pairs for mb in batches)
            positions = layout.positions[offset: offset + n_round_local]
            offset += n_round_local
            with_graph = len(batches) == 1
            here = [self._score(mb.to(self.device), with_grad=with_graph) for mb in batches]
            h = torch.cat([s.h() for s in here])
            detection = torch.cat([s.detection for s in here]) if here[0].detection is not None else None
            value, metrics, g, n_round = self._coefficients(h, detection, positions, layout, step)
            # DDP/FSDP average over the W processes; the round's mean loss weighs its share of the step's pairs.
            g = g * (self.collective.world * n_round / len(layout.batch))
            if with_graph:
                self._backward((g.to(h.dtype) * h).sum())
            else:
                self._replay(batches, here, g)
            loss += value * n_round / len(layout.batch)
            scored.extend(detached(s) for s in here)
            extra.append((metrics, n_round))
        return StepResult(loss=loss, metrics=self._metrics(scored, extra), tokens=tokens)

    def _coefficients(self, h: torch.Tensor, detection: torch.Tensor | None, positions: list[int],
                      layout: StepLayout, step: int) -> tuple[float, dict, torch.Tensor, int]:
        """(L, metrics, this process's g, number of pairs of the round) of one round (steps 2-3 above)."""
        values = [h.detach()] + ([detection] if detection is not None else [])
        gathered, order = self.collective.gather_pairs(values, positions)
        h_all = gathered[0]
        detection_all = gathered[1] if detection is not None else None
        payload = None
        if self.collective.is_main:
            h_all = h_all.clone().requires_grad_(True)
            value, metrics = self._loss(h_all, detection_all, step, [layout.batch[p] for p in order])
            (g,) = torch.autograd.grad(value, h_all, allow_unused=True)
            g = torch.zeros_like(h_all) if g is None else g
            payload = (value.item(), metrics, g.detach().cpu())
        elif self.refinement is not None:
            self.refinement.flag(detection_all, step)  # the main process's flags, so the same window here
        value, metrics, g = self.collective.broadcast(payload)
        return value, metrics, self.collective.local(g.to(h.device), order, positions), len(order)


__all__ = ["DistributedPreferenceObjective"]
