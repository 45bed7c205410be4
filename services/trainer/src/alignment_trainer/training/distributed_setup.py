"""The parts of a TrainingJob (job.py) that only a job of several processes (accelerate) has: the checks of its
hyperparameters against the launch, and the gathering of each step's result over the processes."""

from __future__ import annotations

from alignment_trainer.config import Hyperparams


def check_distributed(h: Hyperparams, accelerator) -> None:
    """What several processes cannot do with these hyperparameters, as a ValueError naming the field."""
    from accelerate.utils import DistributedType

    world = accelerator.num_processes
    if h.batch_size < world:
        raise ValueError(f"spec.hparams.batch_size: {h.batch_size} is smaller than the {world} processes it is "
                         "split across")
    if h.lora is not None and accelerator.distributed_type == DistributedType.FSDP:
        # The merged export needs the whole base and adapter in one process; FSDP holds each process's shard only.
        raise ValueError("spec.hparams.lora: not supported under FSDP; launch the LoRA job data-parallel (DDP, "
                         "accelerate launch --multi_gpu), where every process holds the model whole")


def gather_step(result, samples_seen: int, step_indices: list[int]):
    """The step's result over every process (collective: every process calls it): loss and metrics averaged
    (shards are equal up to one example), tokens summed, and dist/* metrics (per-process sample counts,
    examples seen by more than one process in this step)."""
    from accelerate.utils import gather_object

    gathered = gather_object([(result.loss, result.metrics, result.tokens, samples_seen,
                              step_indices)])
    losses_ = [g[0] for g in gathered]
    keys = sorted({k for g in gathered for k in g[1]})
    metrics = {k: sum(g[1][k] for g in gathered if k in g[1]) / sum(1 for g in gathered if k in g[1])
               for k in keys}
    seen: dict[int, int] = {}
    for g in gathered:
        for i in g[4]:
            seen[i] = seen.get(i, 0) + 1
    metrics["dist/world_size"] = float(len(gathered))
    metrics["dist/shard_overlap"] = float(sum(c - 1 for c in seen.values()))
    for rank, g in enumerate(gathered):
        metrics[f"dist/samples/rank{rank}"] = float(g[3])
    return type(result)(loss=sum(losses_) / len(losses_), metrics=metrics, tokens=sum(g[2] for g in gathered))


__all__ = ["check_distributed", "gather_step"]
