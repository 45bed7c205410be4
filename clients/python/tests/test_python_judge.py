"""examples/python-judge as a round judge (RunSpec.judge_address) follows the JudgePairs contract as the stack's RULE
judge does (judge.proto): which two responses form a pair (the first two, or best against worst), ties under the
request's tolerance, and pairs with a response cut at max_new_tokens (drop, penalize, keep), each counted. Called over
gRPC on loopback, as the coordinator calls it; the scorer prefers shorter responses (score = -length)."""

from __future__ import annotations

import json
import pathlib

import grpc
import pytest

from alignment_client.contracts import common_pb2, judge_pb2, judge_pb2_grpc
from conftest import python_judge

SHORTER = "def score(prompt, response):\n    return -float(len(response))\n"
# Lengths 5, 3, 1 and 4; the first two differ by 2.
ITEMS = [
    {"prompt": "p0", "responses": ["aaaaa", "bbb", "c", "dddd"], "finish_reasons": ["stop", "stop", "length", "stop"]},
    {"prompt": "p1", "responses": ["xx", "xx", "yyyyyy", "z"], "finish_reasons": ["stop", "stop", "stop", "stop"]},
    {"prompt": "p2", "responses": ["mmm", "nnnn", "", "oo"], "finish_reasons": ["length", "stop", "stop", "stop"]},
]


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory):
    scorer = tmp_path_factory.mktemp("scorer") / "shorter.py"
    scorer.write_text(SHORTER)
    with python_judge(scorer, "my/shorter") as address, grpc.insecure_channel(address) as channel:
        yield judge_pb2_grpc.JudgeStub(channel)


def judge_pairs(stub, tmp_path: pathlib.Path, **fields) -> tuple[judge_pb2.JudgePairsResult, list[dict]]:
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps({"prompt_index": i, **item}) + "\n" for i, item in enumerate(ITEMS)))
    rule = judge_pb2.RuleJudge(rule="my/shorter", tie_tolerance=fields.pop("tie_tolerance", 0.0))
    out = tmp_path / "pairs.jsonl"
    request = judge_pb2.JudgePairsRequest(
        method=common_pb2.JUDGE_METHOD_RULE, rule=rule, responses=common_pb2.ArtifactRef(uri=responses.as_uri()), output_uri=out.as_uri(), **fields
    )
    (response,) = list(stub.JudgePairs(request, timeout=30))
    return response.result, [json.loads(line) for line in out.read_text().splitlines()]


def test_first_two_drops_unfinished_pairs_by_default(judge, tmp_path) -> None:
    result, pairs = judge_pairs(judge, tmp_path)
    # p0: 5 vs 3 characters, both finished; p1: identical; p2: its first response was cut (DROP).
    assert [(p["prompt_index"], p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [(0, "bbb", "aaaaa", 2.0)]
    assert (result.counts.num_prompts, result.counts.num_pairs, result.counts.dropped_identical) == (3, 1, 1)
    assert (result.unfinished.dropped, result.unfinished.in_pairs) == (1, 0)


def test_tie_tolerance_is_in_the_scorer_units(judge, tmp_path) -> None:
    result, pairs = judge_pairs(judge, tmp_path, tie_tolerance=2.5, unfinished_pairs=common_pb2.UNFINISHED_PAIRS_KEEP)
    # p0 differs by 2 and p2 by 1: both under 2.5.
    assert pairs == [] and result.counts.dropped_ties == 2


def test_best_worst_ranks_every_distinct_non_empty_response(judge, tmp_path) -> None:
    result, pairs = judge_pairs(judge, tmp_path, pairing=common_pb2.PAIRING_BEST_WORST, unfinished_pairs=common_pb2.UNFINISHED_PAIRS_KEEP)
    assert [(p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [("c", "aaaaa", 4.0), ("z", "yyyyyy", 5.0), ("oo", "nnnn", 2.0)]
    # p0's chosen "c" was cut: kept (KEEP) and counted.
    assert result.unfinished.in_pairs == 1 and result.counts.num_pairs == 3


def test_penalize_subtracts_the_penalty_before_choosing(judge, tmp_path) -> None:
    fields = {"pairing": common_pb2.PAIRING_BEST_WORST, "unfinished_pairs": common_pb2.UNFINISHED_PAIRS_PENALIZE, "unfinished_penalty": 3.5}
    _, pairs = judge_pairs(judge, tmp_path, **fields)
    # p0: "c" scores -1 - 3.5 = -4.5, now below "bbb" (-3) and above "aaaaa" (-5); p2: "mmm" -6.5 is the worst.
    assert [(p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [("bbb", "aaaaa", 2.0), ("z", "yyyyyy", 5.0), ("oo", "mmm", 4.5)]


def test_refuses_another_rule_naming_the_field(judge, tmp_path) -> None:
    request = judge_pb2.JudgePairsRequest(method=common_pb2.JUDGE_METHOD_RULE, rule=judge_pb2.RuleJudge(rule="other"), output_uri=(tmp_path / "x").as_uri())
    with pytest.raises(grpc.RpcError) as refused:
        list(judge.JudgePairs(request, timeout=30))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and refused.value.details().startswith("rule.rule:")


def test_a_conversation_is_scored_on_its_last_user_turn(tmp_path) -> None:
    # The scorer rewards a response that quotes the prompt text it is given: only the last user turn ("last") makes
    # "about last" the chosen one; the whole conversation, the system turn or the first user turn would not.
    scorer = tmp_path / "quotes.py"
    scorer.write_text("def score(prompt, response):\n    return float(response == 'about ' + prompt)\n")
    conversation = [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "ok"}, {"role": "user", "content": "last"}]
    responses = tmp_path / "responses.jsonl"
    responses.write_text(json.dumps({"prompt_index": 0, "prompt": conversation, "responses": ["about first", "about last"],
                                     "finish_reasons": ["stop", "stop"]}) + "\n")
    out = tmp_path / "pairs.jsonl"
    with python_judge(scorer, "my/quotes") as address, grpc.insecure_channel(address) as channel:
        request = judge_pb2.JudgePairsRequest(
            method=common_pb2.JUDGE_METHOD_RULE, rule=judge_pb2.RuleJudge(rule="my/quotes"),
            responses=common_pb2.ArtifactRef(uri=responses.as_uri()), output_uri=out.as_uri())
        (response,) = list(judge_pb2_grpc.JudgeStub(channel).JudgePairs(request, timeout=30))
    (pair,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (pair["chosen"], pair["rejected"], pair["margin"]) == ("about last", "about first", 1.0)
    assert pair["prompt"] == conversation and response.result.counts.num_pairs == 1
