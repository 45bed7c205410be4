"""Builds the inputs of the micro run (examples/micro-run.json) once, deterministically, under OUTDIR
(`npm run stack` calls it with $DATA_DIR/micro):

    model/checkpoint, model/onnx   π_init: a random tiny Llama (seed 0, vocab 320, hidden 32, 2 layers) saved and
                                   exported with the trainer's own export (alignment_trainer.public; make_tiny_model.py)
    seed_pairs.jsonl               10 pairs labelled by the judge's rule `length/shorter` (chosen = shorter response)
    seed_pairs.conversational.jsonl  the same pairs in TRL's conversational form (examples/data/README.md), a system
                                   turn before each user prompt (examples/micro-run.yaml trains on these)
    round-1.jsonl, round-2.jsonl   12 fresh prompts each (disjoint from each other and from the seed prompts)
    eval.jsonl                     8 held-out prompts
    .complete                      written last

    "$(bash tools/python/venv.sh)/bin/python" tools/stack/prepare_micro.py .data/micro

The set is built in a temporary sibling and renamed to OUTDIR when complete; an OUTDIR with .complete is left alone
(cached), and concurrent callers serialise on a lock file beside it. Nothing is downloaded.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools/testing"))

# What .complete holds: a cache built by an older version (without a file the examples now name) is rebuilt.
VERSION = "micro run inputs v2 (conversational seed pairs)\n"

# Arithmetic prompts: any text tokenises with the tiny byte-level BPE; the numbers make every prompt distinct.
OPS = ("+", "-", "*")


def prompt(i: int) -> str:
    a, b = 3 + (i * 7) % 41, 2 + (i * 5) % 17
    return f"What is {a} {OPS[i % 3]} {b}? Answer briefly."


def answer(i: int) -> int:
    a, b = 3 + (i * 7) % 41, 2 + (i * 5) % 17
    return {"+": a + b, "-": a - b, "*": a * b}[OPS[i % 3]]


def shorter_is_better(response: str) -> float:
    """services/judge/src/judging/rules.ts `length/shorter`: score = -(characters of the trimmed response)."""
    return -float(len(response.strip()))


def seed_pair(i: int) -> dict:
    short = f"{answer(i)}."
    long = f"Let me think about it step by step. The answer is {answer(i)}, I am fairly sure of it."
    a, b = (short, long) if i % 2 == 0 else (long, short)  # the rule decides, not the order
    chosen, rejected = (a, b) if shorter_is_better(a) > shorter_is_better(b) else (b, a)
    return {"prompt": prompt(i), "chosen": chosen, "rejected": rejected}


def conversational(pair: dict) -> dict:
    """A seed pair in TRL's conversational form: the prompt as messages, each completion one assistant message."""
    return {
        "prompt": [
            {"role": "system", "content": "Answer arithmetic questions."},
            {"role": "user", "content": pair["prompt"]},
        ],
        "chosen": [{"role": "assistant", "content": pair["chosen"]}],
        "rejected": [{"role": "assistant", "content": pair["rejected"]}],
    }


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")


def build(tmp: Path) -> None:
    from make_tiny_model import build_causal_lm  # torch/transformers import: only when building

    build_causal_lm(tmp / "model", vocab_size=320, hidden=32, layers=2, seed=0)
    write_jsonl(tmp / "seed_pairs.jsonl", [seed_pair(i) for i in range(0, 10)])
    write_jsonl(tmp / "seed_pairs.conversational.jsonl", [conversational(seed_pair(i)) for i in range(0, 10)])
    write_jsonl(tmp / "round-1.jsonl", [{"id": f"r1-{i}", "prompt": prompt(i)} for i in range(10, 22)])
    write_jsonl(tmp / "round-2.jsonl", [{"id": f"r2-{i}", "prompt": prompt(i)} for i in range(22, 34)])
    write_jsonl(tmp / "eval.jsonl", [{"id": f"eval-{i}", "prompt": prompt(i)} for i in range(34, 42)])
    (tmp / ".complete").write_text(VERSION)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / ".complete").is_file() and (out / ".complete").read_text() == VERSION:
            print(f"prepare_micro: {out} is ready (cached)", file=sys.stderr)
            return
        shutil.rmtree(out, ignore_errors=True)  # an incomplete earlier build
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            print(f"prepare_micro: building {out} (tiny Llama + ONNX, prompts, seed pairs)", file=sys.stderr)
            build(tmp)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"prepare_micro: {out} is ready", file=sys.stderr)


if __name__ == "__main__":
    main()
