"""A tiny training world on disk for the trainer's job tests: tokenizer directory, SFT and pair JSONL, and a small
Hugging Face checkpoint to start preference jobs from. Everything is built in-process (tiny.py), nothing downloads.

The task is arithmetic: "What is 3 plus 4?" -> "3 plus 4 is 7." The preference pairs prefer the correct sum over a
wrong one, so DPO has a consistent signal to follow, except every 4th pair, whose labels are flipped (the label
noise self-refinement and the adversary exist for: those pairs' margins fall, and SPA flags them).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from tiny import tiny_llama, tiny_tokenizer


@dataclass(frozen=True)
class World:
    root: Path
    tokenizer: Path  # tokenizer directory (tokenizer.json, tokenizer_config.json, chat template)
    sft: Path  # {"prompt", "response"} JSONL
    pairs: Path  # {"prompt", "chosen", "rejected"} JSONL
    checkpoint: Path  # HF checkpoint of a tiny Llama with the tokenizer


def sft_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"prompt": f"What is {a} plus {b}?", "response": f"{a} plus {b} is {a + b}."})
    return rows


def pair_rows(n: int, seed: int = 1, flip_every: int = 4) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        wrong = a + b + rng.choice([-2, -1, 1, 2])
        good, bad = f"{a} plus {b} is {a + b}.", f"{a} plus {b} is {wrong}, I think."
        if flip_every and i % flip_every == flip_every - 1:
            good, bad = bad, good
        rows.append({"prompt": f"What is {a} plus {b}?", "chosen": good, "rejected": bad, "score": rng.random()})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build_world(root: Path, *, n_sft: int = 32, n_pairs: int = 16) -> World:
    root.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer()
    tok.save_pretrained(root / "tokenizer")
    # tiny_llama's defaults, as test_export.py: one architecture, so the ONNX exports of a run share one trace.
    model = tiny_llama(vocab_size=len(tok))
    model.save_pretrained(root / "init")
    tok.save_pretrained(root / "init")
    return World(root=root, tokenizer=root / "tokenizer", sft=write_jsonl(root / "sft.jsonl", sft_rows(n_sft)),
                 pairs=write_jsonl(root / "pairs.jsonl", pair_rows(n_pairs)), checkpoint=root / "init")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
