"""Training data for the trainer: JSONL loading with validation, and length-grouped, seeded batching.

Two kinds of record (trainer.proto: SftJob, PreferenceJob; docs/algorithm.md §1-§2), each in every one of TRL's
dataset forms, JSONL or Parquet (data_forms.py; examples/data/README.md):

    SFT    {"prompt", "response"}, {"prompt", "completion"}, {"messages"} or {"text"}
    pairs  {"prompt", "chosen", "rejected"} or {"chosen", "rejected"} (implicit prompt), strings or message lists
           + optional "chosen_finished" / "rejected_finished": bool  (false: cut at max_new_tokens, trained without
                                                                       EOS; absent or null: finished)

Extra keys are kept out of the way (the judge writes scores and margins beside each pair), so a labelled-pairs
artifact can be trained on as it is; the one read is the SPA judge's margin (a "margin" beside "method":
"spa_implicit", formats.proto LabelledPair), which the per-round adversary starts from (docs/algorithm.md §7).
Every problem is reported as ``path:line: field: reason`` (``path:row N: ...`` in a Parquet file) so a user can
open the file at the offending record.

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

from alignment_trainer.training import data_forms
from alignment_trainer.training.data_forms import CHAT_TEMPLATE, FormError

# Batches per mega-batch. Bigger groups pad less but make the batch order less random; 50 is the value
# transformers' LengthGroupedSampler uses.
MEGABATCH_MULTIPLIER = 50


class DatasetError(ValueError):
    """Raised when a JSONL file is missing, empty, or has a line that is not a valid record.

    The message starts with ``path:line`` (line 0 for whole-file problems; ``path:row N`` for a Parquet row) and
    names the offending field.
    """

    def __init__(self, path: str | Path, line: int, message: str, *, row: bool = False) -> None:
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}:{'row ' if row else ''}{line}: {message}")


@dataclass(frozen=True)
class SftExample:
    # Text or chat messages (logprobs.Prompt); None for language-modelling text ({"text"}): no prompt, no template.
    prompt: str | list | None
    response: str


# LabelledPair.method of the SPA judge, whose margin is the implicit-reward margin h of docs/algorithm.md §1.
SPA_IMPLICIT_METHOD = "spa_implicit"


@dataclass(frozen=True)
class PreferencePair:
    # Text (one user turn) or chat messages (logprobs.Prompt).
    prompt: str | list
    chosen: str
    rejected: str
    # The SPA judge's margin s(chosen) − s(rejected) (π_{t−1} or π_0 against π_init; no β) when the SPA judge
    # labelled this pair; None for other pairs (human seed pairs, other judges).
    judge_margin: float | None = None
    # False when the generator cut the response at max_new_tokens: it is tokenised without EOS (logprobs.py).
    chosen_finished: bool = True
    rejected_finished: bool = True


def _records(path: str | Path) -> list[tuple[int, bool, object]]:
    """(line or row number, whether it is a Parquet row, parsed value) of every record: JSONL lines (blank ones
    skipped, line numbers the file's own), or the rows of a ``.parquet`` file."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(p, 0, "no such file")
    records: list[tuple[int, bool, object]] = []
    if data_forms.is_parquet(p):
        try:
            records = [(i, True, row) for i, row in enumerate(data_forms.parquet_rows(p), start=1)]
        except FormError as err:
            raise DatasetError(p, 0, str(err)) from None
    else:
        with p.open("r", encoding="utf-8") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    records.append((lineno, False, json.loads(raw)))
                except json.JSONDecodeError as err:
                    raise DatasetError(p, lineno, f"not valid JSON ({err.msg} at column {err.colno})") from None
    if not records:
        raise DatasetError(p, 0, "no records (the file is empty)")
    return records


def load_sft(path: str | Path) -> list[SftExample]:
    """Loads SFT data in any accepted form (module docstring); raises DatasetError naming file:line and field."""
    examples = []
    for lineno, row, r in _records(path):
        try:
            prompt, response = data_forms.sft_fields(r)
        except FormError as err:
            raise DatasetError(path, lineno, str(err), row=row) from None
        examples.append(SftExample(prompt, response))
    return examples


def load_pairs(path: str | Path) -> list[PreferencePair]:
    """Loads preference pairs in any of TRL's preference forms; raises DatasetError naming file:line and field.

    A pair whose chosen and rejected responses are identical carries no preference (its DPO gradient is exactly
    zero) and is refused rather than silently trained on: the judge drops such pairs (docs/algorithm.md §2), so one
    here means the file did not come from it.
    """
    pairs = []
    for lineno, row, r in _records(path):
        try:
            prompt, chosen, rejected = data_forms.pair_fields(r)
            if chosen == rejected:
                raise FormError("rejected", "identical to chosen (the pair carries no preference)")
            chosen_finished = _finished_flag(r, "chosen_finished")
            rejected_finished = _finished_flag(r, "rejected_finished")
            margin = _judge_margin(r)
        except FormError as err:
            raise DatasetError(path, lineno, str(err), row=row) from None
        pairs.append(PreferencePair(prompt, chosen, rejected, judge_margin=margin,
                                    chosen_finished=chosen_finished, rejected_finished=rejected_finished))
    return pairs


def text_example_ids(tokenizer, text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(prompt_ids, response_ids) of {"text"} language-modelling data: raw text, no chat template. The prompt is the
    tokenizer's BOS when it has one (so the text's first token is learned too), the response the text and EOS."""
    bos = tokenizer.bos_token_id
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ((bos,) if bos is not None else ()), (*ids, tokenizer.eos_token_id)


def require_chat_template(tokenizer, path: str | Path, prompts: Sequence, *, encoding: str, encoding_field: str) -> None:
    """A tokenizer without a chat template can encode string prompts as raw text only: refuses, with a DatasetError
    naming the file and the field, a job whose ``encoding`` is CHAT_TEMPLATE (``encoding_field``) or whose data holds
    a conversational prompt (a message list: always rendered with the template)."""
    if getattr(tokenizer, "chat_template", None) is not None:
        return
    if encoding == CHAT_TEMPLATE:
        raise DatasetError(path, 0, f"{encoding_field}: PROMPT_ENCODING_CHAT_TEMPLATE needs a chat template, and the "
                                    "model's tokenizer has none: use PROMPT_ENCODING_RAW_TEXT (the default), which "
                                    "encodes string prompts as they are")
    for i, prompt in enumerate(prompts):
        if prompt is not None and not isinstance(prompt, str):
            raise DatasetError(path, 0, f"prompt: record {i + 1} is a conversation (message list), which is rendered "
                                        "with the chat template, and the model's tokenizer has none: give the prompts "
                                        "as text (standard form), encoded as raw text")


def _judge_margin(record: dict) -> float | None:
    """The SPA judge's margin of a labelled pair: a finite number when "method" is "spa_implicit", else None."""
    if record.get("method") != SPA_IMPLICIT_METHOD:
        return None
    value = record.get("margin")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormError("margin", f"must be a finite number for method {SPA_IMPLICIT_METHOD!r}, got {value!r}")
    return float(value)


def _finished_flag(record: dict, field: str) -> bool:
    """A pair's optional ``chosen_finished`` / ``rejected_finished`` (formats.proto LabelledPair): absent or null
    means finished (seed pairs and TRL-style pairs have none)."""
    value = record.get(field)
    if value is None:
        return True
    if not isinstance(value, bool):
        raise FormError(field, f"must be true or false, got {type(value).__name__}")
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
    "require_chat_template",
    "steps_per_epoch",
    "text_example_ids",
]
