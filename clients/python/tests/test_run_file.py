"""Run files read as the TS CLI reads them (tools/cli/src/run-file): no stack needed."""

from __future__ import annotations

import pytest

from alignment_client import RunFileError, load_run_file
from alignment_client.contracts import common_pb2, coordinator_pb2
from alignment_client.run_file import interpolate
from conftest import REPO


def test_reads_the_commented_micro_run_yaml_with_paths_from_data_dir_or_the_file() -> None:
    with_env = load_run_file(REPO / "examples/micro-run.yaml", {"DATA_DIR": "/srv/data"})
    assert with_env.run_id == "micro"
    spec = with_env.spec
    assert spec.configuration == coordinator_pb2.CONFIGURATION_SPA
    assert spec.unfinished_pairs == common_pb2.UNFINISHED_PAIRS_KEEP
    assert spec.seed_pairs.uri == "/srv/data/micro/seed_pairs.conversational.jsonl"
    assert [r.uri for r in spec.round_prompts.rounds] == ["/srv/data/micro/round-1.jsonl", "/srv/data/micro/round-2.jsonl"]
    assert list(spec.loss.dnd_lambda_schedule) == [0.5, 0.25]
    assert spec.evaluation.rule == "length/shorter" and spec.evaluation.samples_per_prompt == 2
    # Without DATA_DIR the default ../.data is relative to the file's folder (examples/).
    default = load_run_file(REPO / "examples/micro-run.yaml", {})
    assert default.spec.seed_pairs.uri == str(REPO / ".data/micro/seed_pairs.conversational.jsonl")


def test_the_json_run_file_is_the_same_request_as_grpcurl_sends() -> None:
    spec = load_run_file(REPO / "examples/micro-run.json", {}).spec
    assert spec.evaluation.evaluator == common_pb2.JUDGE_METHOD_RULE
    assert spec.seed_pairs.uri == str(REPO / "examples/.data/micro/seed_pairs.conversational.jsonl")


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("spec: {loss: {bta: 0.1}}", "spec.loss.bta", "unknown field of LossParams"),
        ("spec: {configuration: spaa}", "spec.configuration", "must be one of CONFIGURATION_DPO_SEED"),
        ("spec: {rounds: -1}", "spec.rounds", "must be an integer in [0, 4294967295]"),
        ("spec: {rounds: 1.5}", "spec.rounds", "must be an integer"),
        ("spec: {name: 3}", "spec.name", "must be a string"),
        ("spec: {frozen_judge: yes please}", "spec.frozen_judge", "must be true or false"),
        ("spec: {round_prompts: {rounds: []}, prompt_split: {}}", "spec.prompt_split", "alternatives (oneof prompts)"),
        ("spec: {seed_pairs: {uri: a}, seedPairs: {uri: b}}", "spec.seed_pairs", "given twice"),
        ("loss: {beta: x}", "spec.loss.beta", "must be a number"),
        ("spec: {name: '${NOPE}'}", "spec.name", "environment variable NOPE is not set"),
    ],
)
def test_bad_values_name_the_field(tmp_path, text: str, field: str, reason: str) -> None:
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(RunFileError) as error:
        load_run_file(tmp_path / "run.yaml", {})
    assert error.value.field == field
    assert reason in str(error.value)


def test_enums_numbers_and_camel_case_as_the_cli_takes_them(tmp_path) -> None:
    (tmp_path / "spec.yaml").write_text(
        "configuration: wdro-sr\nlabelNoiseRate: '0.25'\nseed_pairs: {uri: pairs.jsonl}\nround_prompt_overlap: 3\n"
        "evaluation: {evaluator: rule, rule: python/score, gold_judge_address: '${GOLD:-127.0.0.1:50070}'}\n"
    )
    spec = load_run_file(tmp_path / "spec.yaml", {}).spec
    assert spec.configuration == coordinator_pb2.CONFIGURATION_WDRO_SR
    assert spec.label_noise_rate == 0.25
    assert spec.seed_pairs.uri == str(tmp_path / "pairs.jsonl")
    assert spec.round_prompt_overlap == coordinator_pb2.ROUND_PROMPT_OVERLAP_ALLOW
    assert spec.evaluation.gold_judge_address == "127.0.0.1:50070"


def test_files_that_are_not_run_files(tmp_path) -> None:
    with pytest.raises(RunFileError, match="no such file"):
        load_run_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RunFileError, match="not valid JSON"):
        load_run_file(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(RunFileError, match="must be a mapping"):
        load_run_file(tmp_path / "list.yaml")


def test_interpolation_rules() -> None:
    env = {"A": "x", "EMPTY": ""}
    assert interpolate("${A}/${B:-d}/${EMPTY:-e}/$${A}/$5", env) == "x/d/e/${A}/$5"
    with pytest.raises(ValueError, match="unterminated"):
        interpolate("${A", env)
    with pytest.raises(ValueError, match="not a variable reference"):
        interpolate("${1A}", env)
