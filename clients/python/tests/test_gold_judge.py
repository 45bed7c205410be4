"""Your own gold annotator (issue 13): a micro run whose evaluation.gold_judge_address is examples/python-judge
serving a Python scorer. The scorer prefers LONGER responses, under the rule name of the stack's own `length/shorter`
(which prefers shorter ones): every win, loss, gold reward and self-label accuracy the run reports must be what the
Python scorer says about the stage's own comparison files, and the opposite of what the stack's judge would say."""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlparse

import grpc
import pytest

from alignment_client import Client, ClientError, load_run_file
from alignment_client.contracts import common_pb2, coordinator_pb2
from conftest import REPO, TOKENS, Stack, python_judge

SCORER = "def score(prompt, response):\n    return float(len(response))\n"


def micro_spec(stack: Stack) -> coordinator_pb2.RunSpec:
    return load_run_file(REPO / "examples/micro-run.yaml", {**os.environ, "DATA_DIR": str(stack.data_dir)}).spec


def lines(ref: common_pb2.ArtifactRef) -> list[dict]:
    with open(unquote(urlparse(ref.uri).path), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def output(stage: coordinator_pb2.StageRecord, name: str) -> common_pb2.ArtifactRef:
    (ref,) = [o for o in stage.outputs if o.uri.endswith(f"/{name}.jsonl")]
    return ref


def test_a_run_evaluated_by_a_python_gold_judge(stack: Stack, tmp_path) -> None:
    scorer = tmp_path / "longer.py"
    scorer.write_text(SCORER)
    with python_judge(scorer, "length/shorter") as address, Client(stack.coordinator, token=TOKENS["alice"]) as client:
        spec = micro_spec(stack)
        spec.evaluation.gold_judge_address = address
        client.run(spec, run_id="py-gold")
        events = list(client.watch("py-gold"))
        run = client.get("py-gold")
    assert run.state == common_pb2.JOB_STATE_SUCCEEDED, run.error
    assert run.spec.evaluation.gold_judge_address == address
    evaluations = {s.round: s for s in run.stages if s.stage == coordinator_pb2.STAGE_EVALUATE and s.state == common_pb2.JOB_STATE_SUCCEEDED}
    assert sorted(evaluations) == [0, 1, 2]
    messages = {e.stage.round: e.stage.message for e in events if e.WhichOneof("event") == "stage"
                and e.stage.stage == coordinator_pb2.STAGE_EVALUATE and e.stage.state == common_pb2.JOB_STATE_SUCCEEDED}

    decided_somewhere = False
    for r in run.rounds:
        metrics, stage = r.metrics, evaluations[r.round]
        # The comparisons (π_t's sample, π_init's) as the stage wrote them, scored here by the same Python scorer.
        wins = losses = ties = 0
        policy_scores = []
        for item in lines(output(stage, "comparisons")):
            policy, init = item["responses"]
            if policy == init or len(policy) == len(init):
                ties += 1
                continue
            policy_scores.append(len(policy))
            wins, losses = (wins + 1, losses) if len(policy) > len(init) else (wins, losses + 1)
        assert (metrics["eval/wins"], metrics["eval/losses"], metrics["eval/ties"]) == (wins, losses, ties), r.round
        assert metrics["eval/win_rate"] == pytest.approx((wins + ties / 2) / (wins + losses + ties))
        if policy_scores:
            assert metrics["eval/gold_reward"] == pytest.approx(sum(policy_scores) / len(policy_scores))
        decided_somewhere |= wins + losses > 0
        if r.round == 0:
            assert "judge/self_label_accuracy" not in metrics
            continue
        # Self-labels (chosen, rejected) against the gold judge: agreement = the chosen one is the longer.
        labels = lines(output(stage, "self_labels"))
        decided = [p for p in labels if len(p["responses"][0]) != len(p["responses"][1])]
        agree = sum(len(p["responses"][0]) > len(p["responses"][1]) for p in decided)
        assert metrics["judge/self_label_gold_ties"] == len(labels) - len(decided)
        if decided:
            accuracy = agree / len(decided)
            assert metrics["judge/self_label_accuracy"] == pytest.approx(accuracy)
            # Below chance is said loudly on the stage's event, against the gold judge's verdicts.
            assert ("below chance" in messages[r.round]) == (accuracy < 0.5), messages[r.round]
    # Not a run where every comparison tied: the checks above compared real verdicts.
    assert decided_somewhere


def test_a_bad_gold_judge_address_is_refused_naming_the_field(stack: Stack) -> None:
    with Client(stack.coordinator, token=TOKENS["alice"]) as client:
        spec = micro_spec(stack)
        spec.evaluation.gold_judge_address = "localhost"
        with pytest.raises(ClientError) as refused:
            client.run(spec, run_id="py-gold-bad")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.evaluation.gold_judge_address" in refused.value.details and "host:port" in refused.value.details
