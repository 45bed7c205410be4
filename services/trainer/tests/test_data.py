"""data.py: JSONL validation errors a user can act on (file:line and field), and length-grouped batching."""

from __future__ import annotations

import json
import random

import pytest

from alignment_trainer.training import data


def _write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_loads_pairs_and_sft_ignoring_extra_keys(tmp_path):
    p = _write(tmp_path, "pairs.jsonl", [
        json.dumps({"prompt": "Q1", "chosen": "good", "rejected": "bad", "chosen_score": 1.5}),
        "",
        json.dumps({"prompt": "", "chosen": "a", "rejected": "b"}),
    ])
    pairs = data.load_pairs(p)
    assert pairs == [data.PreferencePair("Q1", "good", "bad"), data.PreferencePair("", "a", "b")]
    s = _write(tmp_path, "sft.jsonl", [json.dumps({"prompt": "hi", "response": "hello"})])
    assert data.load_sft(s) == [data.SftExample("hi", "hello")]


@pytest.mark.parametrize(("lines", "expected"), [
    (['{"prompt": "a", "chosen": "b", "rejected": "c"}', '{"prompt": "a", "chosen": "b"'],
     "pairs.jsonl:2: not valid JSON"),
    (['{"prompt": "a", "chosen": "b", "rejected": "c"}', "", '{"prompt": "a", "rejected": "c"}'],
     "pairs.jsonl:3: chosen: missing"),
    (['{"prompt": 7, "chosen": "b", "rejected": "c"}'], "pairs.jsonl:1: prompt: must be a string or a list of"),
    (['{"prompt": "a", "chosen": "b", "rejected": "  "}'], "pairs.jsonl:1: rejected: must not be empty"),
    (['{"prompt": "a", "chosen": "same", "rejected": "same"}'], "pairs.jsonl:1: rejected: identical to chosen"),
    (['["prompt", "chosen"]'], "pairs.jsonl:1: (record): must be a JSON object, got list"),
    ([""], "pairs.jsonl:0: no records"),
])
def test_pair_errors_name_file_line_and_field(tmp_path, lines, expected):
    p = _write(tmp_path, "pairs.jsonl", lines)
    with pytest.raises(data.DatasetError) as err:
        data.load_pairs(p)
    assert str(err.value).startswith(str(tmp_path / expected.split(":")[0]) + ":" + expected.split(":", 1)[1]), \
        str(err.value)


def test_missing_file_and_sft_field_errors(tmp_path):
    with pytest.raises(data.DatasetError, match=r"nope\.jsonl:0: no such file"):
        data.load_sft(tmp_path / "nope.jsonl")
    p = _write(tmp_path, "sft.jsonl", ['{"prompt": "a", "completion": "b"}', '{"prompt": "a", "answer": "b"}'])
    with pytest.raises(data.DatasetError, match=r"sft\.jsonl:2: \(record\): is in no SFT form"):
        data.load_sft(p)


def _padding(batches, lengths):
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_length_grouped_batches_cover_every_example_once_and_pad_less_than_random():
    rng = random.Random(0)
    lengths = [rng.randint(5, 500) for _ in range(1000)]
    batches = data.length_grouped_batches(lengths, 8, seed=3, epoch=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert all(len(b) == 8 for b in batches)  # 1000 = 125 * 8

    order = list(range(1000))
    random.Random(1).shuffle(order)
    random_batches = [order[i:i + 8] for i in range(0, 1000, 8)]
    assert _padding(batches, lengths) < 0.2 * _padding(random_batches, lengths)


def test_length_grouped_batches_are_deterministic_per_seed_and_epoch():
    lengths = list(range(1, 101))
    a = data.length_grouped_batches(lengths, 4, seed=1, epoch=0)
    assert a == data.length_grouped_batches(lengths, 4, seed=1, epoch=0)
    assert a != data.length_grouped_batches(lengths, 4, seed=1, epoch=1)
    assert a != data.length_grouped_batches(lengths, 4, seed=2, epoch=0)


def test_last_short_batch_kept_or_dropped():
    kept = data.length_grouped_batches([3] * 10, 4, seed=0, epoch=0)
    assert sorted(len(b) for b in kept) == [2, 4, 4]
    dropped = data.length_grouped_batches([3] * 10, 4, seed=0, epoch=0, drop_last=True)
    assert [len(b) for b in dropped] == [4, 4]
    assert data.steps_per_epoch(10, 4) == 3 and data.steps_per_epoch(10, 4, drop_last=True) == 2


def test_pairs_carry_the_finished_flags_absent_meaning_finished(tmp_path):
    p = _write(tmp_path, "pairs.jsonl", [
        json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b", "chosen_finished": False,
                    "rejected_finished": True}),
        json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b", "chosen_finished": None}),
        json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b"}),
    ])
    pairs = data.load_pairs(p)
    assert [(x.chosen_finished, x.rejected_finished) for x in pairs] == [(False, True), (True, True), (True, True)]
    bad = _write(tmp_path, "bad.jsonl", [json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b",
                                                     "rejected_finished": "no"})])
    with pytest.raises(data.DatasetError, match="bad.jsonl:1: rejected_finished: must be true or false, got str"):
        data.load_pairs(bad)
