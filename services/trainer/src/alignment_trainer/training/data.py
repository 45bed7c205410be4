"""Training data for the trainer: JSONL loading with validation, and length-grouped, seeded batching.

Two record shapes (trainer.proto: SftJob, PreferenceJob; docs/algorithm.md §1-§2):

    SFT    {"prompt": str, "response": str}
    pairs  {"prompt": str, "chosen": str, "rejected": str}        (TRL's "standard, explicit prompt" format)
           + optional "chosen_finished" / "rejected_finished": bool  (false: cut at max_new_tokens, trained without
                                                                       EOS; absent or null: finished)

Extra keys are kept out of the way (the judge writes scores and margins beside each pair), so a labelled-pairs
artifact can be trained on as it is; the one read is the SPA judge's margin (a "margin" beside "method":
"spa_implicit", formats.proto LabelledPair), which the per-round adversary starts from (docs/algorithm.md §7).
Every problem is reported as ``path:line: field: reason`` so a user can open the file at the offending line.

Batching groups examples of similar length so a micro-batch pads little: the order is a seeded shuffle, cut into
mega-batches that are sorted by length, cut into batches, and the batches shuffled again (the scheme of
transformers' LengthGroupedSampler). The order depends only on (seed, epoch), so a resumed job replays the exact
batch sequence and skips the batches it has already trained on.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# Batches per mega-batch. Bigger groups pad less but make the batch order less random; 50 is the value
# transformers' LengthGroupedSampler uses.
MEGABATCH_MULTIPLIER = 50


class DatasetError(ValueError):
    """Raised when a JSONL file is missing, empty, or has a line that is not a valid record.

    The message starts with ``path:line`` (line 0 for whole-file problems) and names the offending field.
    """

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}:{line}: {message}")


@dataclass(frozen=True)
class SftExample:
    prompt: str
    response: str


# LabelledPair.method of the SPA judge, whose margin is the implicit-reward margin h of docs/algorithm.md §1.
SPA_IMPLICIT_METHOD = "spa_implicit"


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    # The SPA judge's margin s(chosen) − s(rejected) (π_{t−1} or π_0 against π_init; no β) when the SPA judge
    # labelled this pair; None for other pairs (human seed pairs, other judges).
    judge_margin: float | None = None
    # False when the generator cut the response at max_new_tokens: it is tokenised without EOS (logprobs.py).
    chosen_finished: bool = True
    rejected_finished: bool = True


def _records(path: str | Path, fields: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Parses JSONL into (line number, object) and checks that every line is an object whose ``fields`` are
    strings (response-like fields non-empty). Blank lines are skipped; line numbers are the file's own."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(p, 0, "no such file")
    records: list[tuple[int, dict[str, str]]] = []
    with p.open("r", encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DatasetError(p, lineno, f"not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise DatasetError(p, lineno, f"expected a JSON object, got {type(obj).__name__}")
            for field in fields:
                if field not in obj:
                    raise DatasetError(p, lineno, f"{field}: missing")
                value = obj[field]
                if not isinstance(value, str):
                    raise DatasetError(p, lineno, f"{field}: must be a string, got {type(value).__name__}")
                # An empty prompt is legal (unconditional text); an empty response trains on nothing but EOS
                # and an empty side of a pair makes the pair meaningless, so those are refused.
                if field != "prompt" and not value.strip():
                    raise DatasetError(p, lineno, f"{field}: must not be empty")
            records.append((lineno, obj))
    if not records:
        raise DatasetError(p, 0, "no records (the file is empty)")
    return records


def load_sft(path: str | Path) -> list[SftExample]:
    """Loads ``{"prompt", "response"}`` JSONL; raises DatasetError naming file:line and field."""
    return [SftExample(r["prompt"], r["response"]) for _, r in _records(path, ("prompt", "response"))]


def load_pairs(path: str | Path) -> list[PreferencePair]:
    """Loads ``{"prompt", "chosen", "rejected"}`` JSONL; raises DatasetError naming file:line and field.

    A pair whose chosen and rejected responses are identical carries no preference (its DPO gradient is exactly
    zero) and is refused rather than silently trained on: the judge drops such pairs (docs/algorithm.md §2), so one
    here means the file did not come from it.
    """
    pairs = []
    for lineno, r in _records(path, ("prompt", "chosen", "rejected")):
        if r["chosen"] == r["rejected"]:
            raise DatasetError(path, lineno, "rejected: identical to chosen (the pair carries no preference)")
        chosen_finished = _finished_flag(path, lineno, r, "chosen_finished")
        rejected_finished = _finished_flag(path, lineno, r, "rejected_finished")
        pairs.append(PreferencePair(r["prompt"], r["chosen"], r["rejected"], judge_margin=_judge_margin(path, lineno, r),
                                    chosen_finished=chosen_finished, rejected_finished=rejected_finished))
    return pairs


def _judge_margin(path: str | Path, lineno: int, record: dict) -> float | None:
    """The SPA judge's margin of a labelled pair: a finite number when "method" is "spa_implicit", else None."""
    if record.get("method") != SPA_IMPLICIT_METHOD:
        return None
    value = record.get("margin")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DatasetError(path, lineno, f"margin: must be a finite number for method {SPA_IMPLICIT_METHOD!r}, "
                                         f"got {value!r}")
    return float(value)


def _finished_flag(path: str | Path, lineno: int, record: dict, field: str) -> bool:
    """A pair's optional ``chosen_finished`` / ``rejected_finished`` (formats.proto LabelledPair): absent or null
    means finished (seed pairs and TRL-style pairs have none)."""
    value = record.get(field)
    if value is None:
        return True
    if not isinstance(value, bool):
        raise DatasetError(path, lineno, f"{field}: must be true or false, got {type(value).__name__}")
    return value


def length_grouped_batches(lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int,
                           drop_last: bool = False) -> list[list[int]]:
    """One epoch's batches of example indices, grouped by length to cut padding, deterministic in (seed, epoch).

    With ``drop_last`` a final short batch is dropped (optimizer steps then all see ``batch_size`` examples);
    otherwise it is kept. Every index appears at most once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(lengths)
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(n))
    rng.shuffle(order)
    mega = batch_size * MEGABATCH_MULTIPLIER
    batches: list[list[int]] = []
    for start in range(0, n, mega):
        group = sorted(order[start:start + mega], key=lambda i: -lengths[i])
        batches.extend(group[j:j + batch_size] for j in range(0, len(group), batch_size))
    if drop_last and batches and len(batches[-1]) < batch_size:
        # The short batch is the tail of the last mega-batch (the shortest examples); any batch could be dropped,
        # and dropping a fixed one keeps the epoch's example set independent of the shuffle below.
        batches.pop()
    rng.shuffle(batches)
    return batches


def steps_per_epoch(n_examples: int, batch_size: int, drop_last: bool = False) -> int:
    """Optimizer steps in one epoch of ``n_examples`` at ``batch_size`` examples per step."""
    return n_examples // batch_size if drop_last else math.ceil(n_examples / batch_size)


__all__ = [
    "DatasetError",
    "MEGABATCH_MULTIPLIER",
    "PreferencePair",
    "SPA_IMPLICIT_METHOD",
    "SftExample",
    "length_grouped_batches",
    "load_pairs",
    "load_sft",
    "steps_per_epoch",
]
