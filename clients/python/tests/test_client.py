"""The Python client against the real stack (conftest.py): a micro run started from examples/micro-run.yaml and
followed with run/watch/get to SUCCEEDED, a second one cancelled, ls, bearer tokens, and errors naming the field."""

from __future__ import annotations

import json
import os

import grpc
import pytest

from alignment_client import Client, ClientError, RunFileError, load_run_file
from alignment_client.contracts import common_pb2, coordinator_pb2
from conftest import REPO, TOKENS, Stack

SUCCEEDED, CANCELLED = common_pb2.JOB_STATE_SUCCEEDED, common_pb2.JOB_STATE_CANCELLED


def micro(stack: Stack):
    """examples/micro-run.yaml, its inputs found through $DATA_DIR as the CLI finds them."""
    return load_run_file(REPO / "examples/micro-run.yaml", {**os.environ, "DATA_DIR": str(stack.data_dir)})


def test_runs_the_micro_run_to_succeeded_with_run_watch_get(stack: Stack) -> None:
    with Client(stack.coordinator, token=TOKENS["alice"]) as client:
        started = client.run(micro(stack), run_id="py-micro")
        assert started.run_id == "py-micro"
        assert started.owner == "alice"
        events = list(client.watch("py-micro"))
        kinds = [e.WhichOneof("event") for e in events]
        assert kinds[-1] == "run" and kinds.count("run") == 1
        assert events[-1].run.state == SUCCEEDED, events[-1].run.error
        # Every stage of the 3 rounds started and succeeded, in order, with per-round metrics on the way.
        done = [(e.stage.round, e.stage.stage) for e in events if e.WhichOneof("event") == "stage" and e.stage.state == SUCCEEDED]
        assert done[0] == (0, coordinator_pb2.STAGE_LEARN) and done[-1] == (2, coordinator_pb2.STAGE_EVALUATE)
        assert {r for r, _ in done} == {0, 1, 2}
        # Each stage reports its round's metrics so far.
        assert sorted({e.round_metrics.round for e in events if e.WhichOneof("event") == "round_metrics"}) == [0, 1, 2]

        run = client.get("py-micro")
        assert run.state == SUCCEEDED
        assert [r.round for r in run.rounds] == [0, 1, 2]
        for r in run.rounds:
            assert 0.0 <= r.metrics["eval/win_rate"] <= 1.0
            assert r.metrics["eval/comparisons"] == 16  # 8 held-out prompts x samples_per_prompt 2
        assert run.latest_model.onnx.uri.startswith("file://")
        assert run.spec.evaluation.rule == "length/shorter"

        # Watching a run that has ended gives its end at once; the same run_id and spec returns it, unchanged.
        assert [e.WhichOneof("event") for e in client.watch("py-micro")][-1] == "run"
        assert client.run(micro(stack), run_id="py-micro").state == SUCCEEDED
        assert "py-micro" in [r.run_id for r in client.ls()]

        # A SUCCEEDED run cannot be cancelled.
        with pytest.raises(ClientError) as refused:
            client.cancel("py-micro")
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_cancels_a_second_run(stack: Stack) -> None:
    with Client(stack.coordinator, token=TOKENS["alice"]) as client:
        assert client.run(micro(stack), run_id="py-cancelled").state in (common_pb2.JOB_STATE_RUNNING, common_pb2.JOB_STATE_PENDING)
        cancelled = client.cancel("py-cancelled")
        assert cancelled.state == CANCELLED
        events = list(client.watch("py-cancelled"))
        assert events[-1].WhichOneof("event") == "run" and events[-1].run.state == CANCELLED
        assert client.get("py-cancelled").state == CANCELLED


def test_bearer_tokens_decide_who_sees_what(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIGNMENT_TOKEN", raising=False)
    with Client(stack.coordinator) as anonymous, pytest.raises(ClientError) as unauthenticated:
        anonymous.ls()
    assert unauthenticated.value.code == grpc.StatusCode.UNAUTHENTICATED
    # $ALIGNMENT_TOKEN is the default token, as for the CLI: bob sees none of alice's runs and may not read them.
    monkeypatch.setenv("ALIGNMENT_TOKEN", TOKENS["bob"])
    with Client(stack.coordinator) as bob:
        assert [r.run_id for r in bob.ls()] == []
        with Client(stack.coordinator, token=TOKENS["alice"]) as alice:
            alice.run(micro(stack), run_id="py-alice-only")
            alice.cancel("py-alice-only")
        with pytest.raises(ClientError) as denied:
            bob.get("py-alice-only")
        assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_bad_specs_are_refused_naming_the_field(stack: Stack, tmp_path) -> None:
    spec = json.loads((REPO / "examples/micro-run.json").read_text())["spec"]
    with Client(stack.coordinator, token=TOKENS["alice"]) as client:
        # Checked by the coordinator (a rule relating fields): INVALID_ARGUMENT naming spec.loss.label_smoothing;
        # nothing is started.
        spec["loss"]["label_smoothing"] = 0.2
        with pytest.raises(ClientError) as invalid:
            client.run(spec, run_id="py-bad-smoothing", base_dir=stack.data_dir.parent)
        assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "spec.loss.label_smoothing: is only used by cdpo and rdpo" in invalid.value.details
        assert invalid.value.field == "spec.loss.label_smoothing"  # from the google.rpc.BadRequest details (issue 13)
        assert "py-bad-smoothing" not in [r.run_id for r in client.ls()]
        # Checked by the client, before any call: a value outside its buf.validate range (the coordinator's message).
        del spec["loss"]["label_smoothing"]
        spec["loss"]["beta"] = 0
        with pytest.raises(ClientError) as out_of_range:
            client.run(spec, run_id="py-bad-beta", base_dir=stack.data_dir.parent)
        assert (out_of_range.value.code, out_of_range.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "spec.loss.beta")
        assert out_of_range.value.details == "invalid spec.loss.beta: must be greater than 0, got 0"
        assert "py-bad-beta" not in [r.run_id for r in client.ls()]
        # Checked by the client: a field the proto does not have, before any call.
        spec["loss"] = {"bta": 0.1}
        with pytest.raises(RunFileError) as unknown:
            client.run(spec)
        assert unknown.value.field == "spec.loss.bta"
    (tmp_path / "run.json").write_text(json.dumps({"spec": {"configuration": "spa", "rounds": "${ROUNDS}"}}))
    with pytest.raises(RunFileError) as unset:
        load_run_file(tmp_path / "run.json", {})
    assert unset.value.field == "spec.rounds" and "ROUNDS is not set" in str(unset.value)
    loaded = load_run_file(tmp_path / "run.json", {"ROUNDS": "3"})
    assert loaded.spec.rounds == 3 and loaded.spec.configuration == coordinator_pb2.CONFIGURATION_SPA
