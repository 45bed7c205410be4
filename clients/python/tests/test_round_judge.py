"""Your own judge for the rounds (RunSpec.judge_address, issue 13): a micro run whose JUDGE stages call
examples/python-judge serving a scorer that prefers SHORTER responses, instead of the SPA implicit-reward judge. Every
round's pairs must be that judge's verdicts on the round's own responses (the shorter chosen, margins in characters),
and the round metrics must say so; an address where nothing listens fails the run naming it."""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlparse

import grpc
import pytest

from alignment_client import Client, ClientError, load_run_file
from alignment_client.contracts import common_pb2, coordinator_pb2
from conftest import REPO, TOKENS, Stack, free_port, python_judge

SHORTER = "def score(prompt, response):\n    return -float(len(response))\n"


def micro_spec(stack: Stack) -> coordinator_pb2.RunSpec:
    return load_run_file(REPO / "examples/micro-run.yaml", {**os.environ, "DATA_DIR": str(stack.data_dir)}).spec


def lines(stage: coordinator_pb2.StageRecord, name: str) -> list[dict]:
    (ref,) = [o for o in stage.outputs if o.uri.endswith(f"/{name}")]
    with open(unquote(urlparse(ref.uri).path), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_a_run_whose_rounds_are_labelled_by_a_python_judge(stack: Stack, tmp_path) -> None:
    scorer = tmp_path / "shorter.py"
    scorer.write_text(SHORTER)
    with python_judge(scorer, "my/shorter") as address, Client(stack.coordinator, token=TOKENS["alice"]) as client:
        spec = micro_spec(stack)
        spec.judge_address = address
        spec.judge_rule = "my/shorter"
        client.run(spec, run_id="py-round-judge")
        run = client.wait("py-round-judge")
    assert run.state == common_pb2.JOB_STATE_SUCCEEDED, run.error
    assert (run.spec.judge_address, run.spec.judge_rule) == (address, "my/shorter")
    stages = {(s.round, s.stage): s for s in run.stages}
    metrics = {r.round: r.metrics for r in run.rounds}
    for t in (1, 2):
        responses = lines(stages[(t, coordinator_pb2.STAGE_GENERATE)], "responses.jsonl")
        pairs = lines(stages[(t, coordinator_pb2.STAGE_JUDGE)], "pairs.jsonl")
        # The judge's verdict on each prompt's first two responses (micro: n = 2, unfinished ones kept), recomputed.
        decided = {i: r["responses"][:2] for i, r in enumerate(responses) if len(r["responses"][0]) != len(r["responses"][1])}
        assert decided, f"round {t}: every pair tied on length"
        assert [p["prompt_index"] for p in pairs] == sorted(decided)
        for p in pairs:
            short, long = sorted(decided[p["prompt_index"]], key=len)
            assert (p["chosen"], p["rejected"], p["method"]) == (short, long, "rule")
            assert p["margin"] == pytest.approx(len(long) - len(short))
        m = metrics[t]
        assert m["judge/num_pairs"] == len(pairs)
        assert m["judge/dropped_ties"] + m["judge/dropped_identical"] == len(responses) - len(pairs)
        assert m["judge/chosen_longer_rate"] == 0.0
        # In the judge's own units (characters), not beta-scaled.
        assert m["judge/mean_margin"] == pytest.approx(sum(p["margin"] for p in pairs) / len(pairs))


def test_an_unreachable_judge_fails_the_run_naming_its_address(stack: Stack) -> None:
    address = f"127.0.0.1:{free_port()}"
    with Client(stack.coordinator, token=TOKENS["alice"]) as client:
        spec = micro_spec(stack)
        spec.judge_address, spec.judge_rule = address, "my/shorter"
        client.run(spec, run_id="py-round-judge-down")
        # The first end of the run (the coordinator may then resume it by itself: AUTO_RESUMES).
        ended = [e.run for e in client.watch("py-round-judge-down") if e.WhichOneof("event") == "run"][-1]
    assert ended.state == common_pb2.JOB_STATE_FAILED
    assert ended.error.startswith(f"round 1 JUDGE: judge of judge_address at {address} unavailable after"), ended.error


def test_a_bad_judge_address_is_refused_naming_the_field(stack: Stack) -> None:
    with Client(stack.coordinator, token=TOKENS["alice"]) as client:
        spec = micro_spec(stack)
        spec.judge_address, spec.judge_rule = "localhost", "my/shorter"
        with pytest.raises(ClientError) as refused:
            client.run(spec, run_id="py-round-judge-bad")
        spec.judge_address, spec.judge_rule = "127.0.0.1:50071", ""
        with pytest.raises(ClientError) as no_rule:
            client.run(spec, run_id="py-round-judge-bad")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "spec.judge_address" and "host:port" in refused.value.details
    assert no_rule.value.field == "spec.judge_rule"
