"""The collectives a data-parallel job's objective needs (docs/algorithm.md, "Several processes"): gather every
process's per-pair values of one optimizer step into the step's batch order, and broadcast what the main process
computed from them. Over torch.distributed's default group (gloo on CPU, NCCL on GPU), which accelerate sets up.

A step's batch (data.py) is split across the processes (job.py): each pair a process trains on has a position in
the step's batch, or -1 when the process only repeats a pair another process owns (a micro-batch with fewer pairs
than processes). Gathering by position gives every process the same vector, in the order a single process would
have the pairs, so a coupled loss of the union batch is the single-process loss of that batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

REPEAT = -1  # the position of a pair this process repeats (another process owns it)


@dataclass(frozen=True)
class StepLayout:
    """Where this process's pairs of one step sit in the step's batch."""

    batch: list[int]  # example index of every pair of the step's batch, in batch order (the same on every process)
    positions: list[int]  # position in ``batch`` of each of this process's pairs, micro-batch after micro-batch

    def __post_init__(self) -> None:
        if any(p != REPEAT and not 0 <= p < len(self.batch) for p in self.positions):
            raise ValueError(f"positions {self.positions} outside a batch of {len(self.batch)} pairs")


def shard(n_batch: int, rank: int, world: int, micro_batch_size: int) -> list[list[int]]:
    """This process's micro-batches of a step of ``n_batch`` pairs, as positions in the batch. The batch is cut
    into micro-batches of ``micro_batch_size`` consecutive pairs, as one process cuts it, and each process takes
    every world-th pair of each from its rank on (one REPEAT of a pair of it when the micro-batch has no more than
    ``rank`` pairs: every process takes part in every micro-batch). So the k-th micro-batches of all processes
    together are the single-process k-th micro-batch, and every process has as many micro-batches (their backward
    passes and collectives pair up)."""
    if n_batch < 1 or not 0 <= rank < world or micro_batch_size < 1:
        raise ValueError(f"no shard of a batch of {n_batch} pairs in micro-batches of {micro_batch_size} for rank "
                         f"{rank} of {world}")
    return [list(range(start + rank, min(start + micro_batch_size, n_batch), world)) or [REPEAT]
            for start in range(0, n_batch, micro_batch_size)]


class Collective:
    """Gather and broadcast over the default process group; every process must make the same calls in order."""

    def __init__(self, rank: int, world: int) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world} processes")
        self.rank = rank
        self.world = world

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather_pairs(self, values: Sequence[torch.Tensor], positions: Sequence[int]) -> tuple[list[torch.Tensor],
                                                                                               list[int]]:
        """Every process's pairs of ``values`` (tensors of one entry per local pair, in ``positions``' order), as
        tensors over the owned pairs of all processes sorted by position, and those positions. Repeated pairs are
        left out. The bits are gathered unchanged (pickled), so every process gets the identical tensors."""
        import torch.distributed as dist

        device = values[0].device if values else torch.device("cpu")
        mine = ([v.detach().cpu() for v in values], list(positions))
        every: list = [None] * self.world
        dist.all_gather_object(every, mine)
        order = sorted((p, r, j) for r, (_, pos) in enumerate(every) for j, p in enumerate(pos) if p != REPEAT)
        if len({p for p, _, _ in order}) != len(order):
            raise RuntimeError(f"two processes own the same position of the step's batch: {[p for p, _, _ in order]}")
        gathered = []
        for k in range(len(values)):
            rows = [every[r][0][k][j] for _, r, j in order]
            gathered.append(torch.stack(rows).to(device) if rows else values[k].new_zeros(0))
        return gathered, [p for p, _, _ in order]

    def broadcast(self, obj):
        """The main process's ``obj`` on every process (the others pass None); pickled, so bit-identical."""
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def local(self, global_values: torch.Tensor, global_positions: Sequence[int],
              positions: Sequence[int]) -> torch.Tensor:
        """This process's entries of a vector over the gathered pairs (``global_positions``' order), 0 for the
        pairs it repeats."""
        where = {p: i for i, p in enumerate(global_positions)}
        out = global_values.new_zeros(len(positions))
        for j, p in enumerate(positions):
            if p != REPEAT:
                out[j] = global_values[where[p]]
        return out


__all__ = ["REPEAT", "Collective", "StepLayout", "shard"]
