"""The reference model's log-probs, computed once per dataset (TrainingHyperparams.cache_reference_logps).

The reference is frozen, so logp_ref(y|x) of a pair never changes: instead of a reference forward pass in every
micro-batch of every epoch, one pass over the dataset before the first step scores every pair, and each step's
batches carry their rows (logprobs.PairBatch.ref_logps). The scores are kept in ``<work_dir>/reference_logps.pt``
with the inputs they belong to, so a resumed job (a later process, after a suspension or a crash) reads them back
instead of running the pass again; checkpoints.remove_checkpoints removes the file with the resume checkpoints.

Not with de-coupled noise detection (SpaParams.dnd_lambda > 0): it needs the reference's logits, not its log-probs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from alignment_trainer.training.logprobs import PairBatch, TokenizedPair, collate_pairs, forward_logits, sequence_logps

log = logging.getLogger("alignment_trainer.runner")

CACHE_FILE = "reference_logps.pt"


class ReferenceCache:
    """logp_ref of every example: ``logps[i] = (chosen, rejected)`` of example i, on the CPU."""

    def __init__(self, logps: torch.Tensor) -> None:
        self.logps = logps

    def attach(self, batch: PairBatch, indices: Sequence[int]) -> PairBatch:
        """The batch of examples ``indices`` (collate_pairs' order) with its reference log-probs: chosen rows
        first, then rejected, as the batch's rows are."""
        rows = self.logps[list(indices)]
        return dataclasses.replace(batch, ref_logps=torch.cat([rows[:, 0], rows[:, 1]]))


@torch.no_grad()
def compute(ref_model, examples: Sequence[TokenizedPair], *, pad_token_id: int, max_length: int, batch_size: int,
            device: torch.device, autocast=None) -> ReferenceCache:
    """One reference forward pass per example, ``batch_size`` pairs at a time, logits at response positions only.
    ``autocast`` is a context factory for the forward (the job's bf16 autocast), None for none."""
    out: torch.Tensor | None = None  # in the log-probs' dtype (float64 for a float64 model, else float32)
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        batch = collate_pairs(chunk, pad_token_id=pad_token_id, max_length=max_length,
                              response_logits_only=True).to(device)
        if autocast is not None:
            with autocast():
                logits = forward_logits(ref_model, batch)
        else:
            logits = forward_logits(ref_model, batch)
        logps = sequence_logps(logits, batch.input_ids, batch.response_mask).cpu()
        if out is None:
            out = torch.empty((len(examples), 2), dtype=logps.dtype)
        n = len(chunk)
        out[start:start + n, 0] = logps[:n]
        out[start:start + n, 1] = logps[n:]
    return ReferenceCache(out)


def load_or_compute(work_dir: Path, key: dict, compute_fn) -> ReferenceCache:
    """The cache stored under work_dir for these inputs (``key``: what the scores depend on), else
    ``compute_fn()``, stored for the next process of this job (written to a temp file, then renamed)."""
    path = Path(work_dir) / CACHE_FILE
    if path.is_file():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.get("key") == key:
            log.info("reference log-probs read back", extra={"fields": {"pairs": int(stored["logps"].shape[0])}})
            return ReferenceCache(stored["logps"])
    cache = compute_fn()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every process of a multi-process job computes the same scores; each writes its own temp file.
    tmp = path.with_name(f"{CACHE_FILE}.{os.getpid()}.tmp")
    torch.save({"key": key, "logps": cache.logps}, tmp)
    tmp.replace(path)
    log.info("reference log-probs computed", extra={"fields": {"pairs": int(cache.logps.shape[0])}})
    return cache


def for_job(job, ref_model) -> ReferenceCache | None:
    """The cache of a TrainingJob being set up (job.py), or None: not asked for (cache_reference_logps), not a
    preference job, or DND (it needs the reference's logits). The pass runs micro-batch by micro-batch under the
    job's autocast; the key names what the scores depend on."""
    from alignment_trainer.config import PreferenceTask
    from alignment_trainer.training.objectives import autocast_context

    task = job.config.task
    if not job.h.cache_reference_logps or not isinstance(task, PreferenceTask):
        return None
    if task.spa.dnd_lambda > 0:
        log.warning("cache_reference_logps is ignored with dnd_lambda > 0 (it needs the reference's logits)")
        return None
    key = {"reference": str(task.reference.path), "reference_sha256": task.reference.sha256,
           "pairs": str(task.pairs.path), "pairs_sha256": task.pairs.sha256, "max_length": job.h.max_length,
           "dtype": str(job.dtype), "bf16_autocast": job.h.bf16, "pairs_kept": len(job.examples)}
    return load_or_compute(job.work_dir, key, lambda: compute(
        ref_model, job.examples, pad_token_id=job.pad_id, max_length=job.h.max_length,
        batch_size=job.h.micro_batch_size, device=job.device,
        autocast=lambda: autocast_context(job.device, job.h.bf16)))


def remove(work_dir: Path) -> None:
    (Path(work_dir) / CACHE_FILE).unlink(missing_ok=True)


__all__ = ["CACHE_FILE", "ReferenceCache", "compute", "for_job", "load_or_compute", "remove"]
