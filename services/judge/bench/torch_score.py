"""Baseline of the judge benchmark: sequence log-probs in PyTorch (CPU) the way the trainer computes them
(alignment_trainer.public, the trainer's logprobs: chat-templated prompt, response + EOS, one forward pass per batch, chunked float32
log-softmax at the targets), on the same model, items and batch size as services/judge/bench/bench.ts.

    python torch_score.py CHECKPOINT_DIR ITEMS_JSON BATCH            -> {"sequences", "seconds", "sequences_per_second"}
    python torch_score.py --peak-memory CHECKPOINT_DIR LENGTH BATCH  -> {"length", "peak_rss_mb"}

ITEMS_JSON is a list of [prompt, response]. One untimed warm-up batch comes first. --peak-memory scores BATCH random
sequences of LENGTH tokens in one forward pass and reports the process's peak resident memory.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "services/trainer/src"))
from alignment_trainer.public import build_pair_batch, sequence_logps  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def load(checkpoint: str):
    # BENCH_THREADS is set by bench.ts for both sides (default: every core).
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS") or os.cpu_count() or 1))
    return AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(checkpoint)


@torch.no_grad()
def throughput(checkpoint: str, items_json: str, batch: int) -> None:
    model, tokenizer = load(checkpoint)
    items = json.loads(items_json)

    def score(chunk):
        prompts, responses = [p for p, _ in chunk], [r for _, r in chunk]
        # A pair batch holds chosen and rejected rows; passing the responses as both halves and keeping the first
        # half scores each sequence once in the trainer's own layout, at half the batch's rows.
        pairs = build_pair_batch(tokenizer, prompts, responses, responses, max_length=4096, strings="chat-template")
        rows = len(chunk)
        logits = model(input_ids=pairs.input_ids[:rows], attention_mask=pairs.attention_mask[:rows], use_cache=False).logits
        return sequence_logps(logits, pairs.input_ids[:rows], pairs.response_mask[:rows])

    score(items[:batch])
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        score(items[start:start + batch])
    seconds = time.perf_counter() - started
    print(json.dumps({"sequences": len(items), "seconds": seconds, "sequences_per_second": len(items) / seconds}))


@torch.no_grad()
def peak_memory(checkpoint: str, length: int, batch: int) -> None:
    model, _ = load(checkpoint)
    ids = torch.randint(0, model.config.vocab_size, (batch, length))
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits
    mask = torch.ones_like(ids, dtype=torch.bool)
    sequence_logps(logits, ids, mask)
    print(json.dumps({"length": length, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    if sys.argv[1] == "--peak-memory":
        peak_memory(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        throughput(sys.argv[1], sys.argv[2], int(sys.argv[3]))
