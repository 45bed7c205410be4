"""Reviewer check of the preference objectives across processes (training/distributed_objective.py): two CPU
processes over gloo (DDP through accelerate) against one process on the union batch, on a tiny random-init Llama
in float64, with the in-process exact adversary (training/exact_adversary.py).

    python services/trainer/scripts/distributed_check.py          (npx nx run trainer:distributed-check)

For each loss (wdro, wdro-sr and drdpo, the coupled ones; spa, whose SR threshold is shared too; SR with de-coupled
noise detection and no warm-up; and wdro on the per-round adversary's fixed weights, solved once and broadcast), for one and for two micro-batches per process, three optimizer steps
of 6, 5 and 1 pairs (unequal shards; a step where one process only repeats a pair) are taken without updating the
weights, and after each step the policy's gradient (after DDP's averaging) is compared with the single-process
gradient over the same pairs. Reported per loss: the largest absolute difference, the same figure for the average
of the two processes' own single-process gradients (what DDP gives without the collective: it must differ), whether
both processes received bit-identical broadcasts (every solution and coefficient vector) and ended with identical
gradients. The last line is one JSON object {"check": "distributed", "max_abs_grad_diff", "losses": [...]}; exit 1
when the figure exceeds 1e-6 or a broadcast or gradient differs between the processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from alignment_trainer.config import (  # noqa: E402
    ADVERSARY_PER_ROUND,
    Artifact,
    PreferenceTask,
    SpaSettings,
    WdroSettings,
)
from alignment_trainer.training.collective import REPEAT, Collective, StepLayout, shard  # noqa: E402
from alignment_trainer.training.exact_adversary import ExactAdversary  # noqa: E402
from alignment_trainer.training.logprobs import TokenizedPair, collate_pairs  # noqa: E402
from alignment_trainer.training.objectives import PreferenceObjective  # noqa: E402

LOSSES = ("wdro", "wdro-sr", "drdpo", "spa", "wdro-per-round")
PER_ROUND = "wdro-per-round"
JUDGE_MARGINS = (2.0, -1.0, 0.5, None, -3.0, 1.0)  # per example index, for the per-round adversary (groups of 3)
BATCH_SIZE = 6
ACCUMULATION = (1, 2)  # micro-batches of 6 and of 3 pairs
STEP_SIZES = (6, 5, 1)
WORLD = 2
TOLERANCE = 1e-6
VOCAB, PAD = 48, 0


def task(name: str) -> PreferenceTask:
    here = Artifact(Path("."))
    wdro = None
    if name == PER_ROUND:
        wdro = WdroSettings(delta=0.01, rho=0.3, schedule=ADVERSARY_PER_ROUND, group_size=3)
    elif name.startswith("wdro"):
        wdro = WdroSettings(delta=0.01, rho=0.3)
    loss = "wdro" if name == PER_ROUND else name
    return PreferenceTask(init=here, reference=here, pairs=here, loss=loss, beta=0.7, drdpo_beta_prime=0.5, wdro=wdro,
                          spa=SpaSettings(alpha=0.3, k_percentile=40.0, warmup_fraction=0.0, dnd_lambda=0.5))


def models() -> tuple[torch.nn.Module, torch.nn.Module]:
    """(policy, reference): two different random-init float64 Llamas, the same on every process."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         initializer_range=0.3, pad_token_id=PAD)
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        out.append(LlamaForCausalLM(config).double().train())
    return out[0], out[1]


def steps() -> list[list[TokenizedPair]]:
    """The pairs of every step: random prompts and responses of a few tokens."""
    rng = random.Random(7)

    def ids(lo: int, hi: int) -> tuple[int, ...]:
        return tuple(rng.randrange(1, VOCAB) for _ in range(rng.randint(lo, hi)))

    return [[TokenizedPair(ids(2, 5), ids(1, 6), ids(1, 6)) for _ in range(n)] for n in STEP_SIZES]


def collate(pairs: list[TokenizedPair]):
    return collate_pairs(pairs, pad_token_id=PAD, max_length=64)


def flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in model.parameters()]).detach().clone()


def single_process(loss: str, accumulation: int, shard_of: int | None = None) -> list[torch.Tensor]:
    """The policy's gradient after each step in one process: over the whole batch (shard_of None), or over
    process ``shard_of``'s shard only (what that process computes without the collective)."""
    policy, ref = models()
    objective = PreferenceObjective(policy, ref, task(loss), total_steps=len(STEP_SIZES), device=torch.device("cpu"),
                                    bf16=False, adversary=ExactAdversary())
    if loss == PER_ROUND:
        objective.solve_per_round(JUDGE_MARGINS)
    grads = []
    for step, pairs in enumerate(steps()):
        size = BATCH_SIZE // accumulation
        indices = list(range(len(pairs)))
        if shard_of is not None:
            parts = list(zip(shard(len(pairs), shard_of, WORLD, size), range(0, len(pairs), size)))
            micro = [collate(shard_pairs(pairs, part, start, size, shard_of)) for part, start in parts]
            indices = [i for part, start in parts for i in shard_pairs(indices, part, start, size, shard_of)]
        else:
            micro = [collate(pairs[i:i + size]) for i in range(0, len(pairs), size)]
        policy.zero_grad(set_to_none=True)
        objective.step(micro, step, pair_indices=indices)
        grads.append(flat_grad(policy))
    return grads


def shard_pairs(pairs: list, part: list[int], start: int, size: int, rank: int) -> list:
    """The pairs (or example indices) of one of a process's micro-batches (``part``, collective.shard) of the micro-batch at ``start``."""
    if part == [REPEAT]:
        chunk = pairs[start:start + size]
        return [chunk[rank % len(chunk)]]
    return [pairs[p] for p in part]


class RecordingCollective(Collective):
    """The real collective, keeping a copy of everything each broadcast delivered (to compare across processes)."""

    def __init__(self, rank: int, world: int) -> None:
        super().__init__(rank, world)
        self.received: list = []

    def broadcast(self, obj):
        out = super().broadcast(obj)
        self.received.append(out)
        return out


def worker(out_dir: Path) -> None:
    """One of the WORLD processes: every (loss, accumulation) in turn, through accelerate's DDP."""
    from accelerate import Accelerator

    from alignment_trainer.training.distributed_objective import DistributedPreferenceObjective

    torch.set_num_threads(1)
    acc = Accelerator(cpu=True)
    rank, world = acc.process_index, acc.num_processes
    assert world == WORLD, f"{world} processes, expected {WORLD}"
    policy, ref = models()
    policy = acc.prepare_model(policy)
    ref = acc.prepare_model(ref, evaluation_mode=True)
    results = {}
    for loss in LOSSES:
        for accumulation in ACCUMULATION:
            collective = RecordingCollective(rank, world)
            objective = DistributedPreferenceObjective(
                policy, ref, task(loss), collective=collective, total_steps=len(STEP_SIZES), device=acc.device,
                bf16=False, adversary=ExactAdversary() if rank == 0 else None, backward=acc.backward)
            if loss == PER_ROUND:
                objective.solve_per_round(JUDGE_MARGINS)
            grads = []
            for step, pairs in enumerate(steps()):
                size = BATCH_SIZE // accumulation
                parts = shard(len(pairs), rank, world, size)
                layout = StepLayout(batch=list(range(len(pairs))), positions=[p for part in parts for p in part])
                micro = [collate(shard_pairs(pairs, part, start, size, rank))
                         for part, start in zip(parts, range(0, len(pairs), size))]
                policy.zero_grad(set_to_none=True)
                objective.step(micro, step, layout=layout)
                grads.append(flat_grad(acc.unwrap_model(policy)))
            results[f"{loss}/{accumulation}"] = {"grads": grads, "received": collective.received}
    torch.save(results, out_dir / f"rank{rank}.pt")
    acc.wait_for_everyone()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_workers(out_dir: Path, timeout_s: float = 300.0) -> None:
    """Starts the WORLD worker processes (gloo on 127.0.0.1) and waits for them; raises if one fails."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": str(WORLD),
           "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)}
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(out_dir)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r), "LOCAL_WORLD_SIZE": str(WORLD)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(WORLD)]
    failed = []
    for rank, proc in enumerate(procs):
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise RuntimeError(f"worker {rank} did not finish in {timeout_s:.0f} s")
        if proc.returncode != 0:
            failed.append(f"worker {rank} exited {proc.returncode}:\n{output[-4000:]}")
    if failed:
        raise RuntimeError("\n".join(failed))


def same(a, b) -> bool:
    """Bit-identical: tensors and arrays by value, dtype and shape, containers and dataclasses field by field,
    floats exactly."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and bool((a == b).all())
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def check() -> dict:
    with tempfile.TemporaryDirectory(prefix="distributed-check-") as tmp:
        launch_workers(Path(tmp))
        ranks = [torch.load(Path(tmp) / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    losses = []
    for loss in LOSSES:
        diff = ungathered = 0.0
        identical = agree = True
        broadcasts = 0
        flagged = moved = 0.0  # the largest share of a round's pairs SR flagged / the adversary moved
        for accumulation in ACCUMULATION:
            key = f"{loss}/{accumulation}"
            union = single_process(loss, accumulation)
            own = [single_process(loss, accumulation, shard_of=r) for r in range(WORLD)]
            for step, expected in enumerate(union):
                got = ranks[0][key]["grads"][step]
                diff = max(diff, (got - expected).abs().max().item())
                naive = sum(o[step] for o in own) / WORLD
                ungathered = max(ungathered, (naive - expected).abs().max().item())
                agree = agree and all(torch.equal(r[key]["grads"][step], got) for r in ranks)
            identical = identical and all(same(r[key]["received"], ranks[0][key]["received"]) for r in ranks)
            broadcasts += len(ranks[0][key]["received"])
            solved = [m for item in ranks[0][key]["received"] if isinstance(item, tuple) for m in item[1:2]]
            flagged = max([flagged] + [m.get("spa/flagged_frac", 0.0) for m in solved])
            moved = max([moved] + [m.get("dro/moved_frac", 0.0) for m in solved])
        losses.append({"loss": loss, "max_abs_grad_diff": diff, "ungathered_grad_diff": ungathered,
                       "broadcasts": broadcasts, "flagged_frac_max": flagged, "moved_frac_max": moved,
                       "solutions_identical": identical, "rank_grads_identical": agree})
    return {"check": "distributed", "max_abs_grad_diff": max(item["max_abs_grad_diff"] for item in losses),
            "losses": losses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return 0
    torch.set_num_threads(1)
    result = check()
    ok = result["max_abs_grad_diff"] <= TOLERANCE and all(
        item["solutions_identical"] and item["rank_grads_identical"] for item in result["losses"])
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
