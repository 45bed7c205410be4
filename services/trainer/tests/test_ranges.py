"""The trainer refuses a JobSpec value outside its buf.validate range (api/ranges.py, protovalidate) with the field
path and message that @bufbuild/protovalidate gives in TypeScript: the cross-language cases of
libs/contracts/testing/range-cases.json, also run by libs/contracts/src/ranges.spec.ts. The ranges are checked before
any file is looked at, so the base's paths need not exist; the base itself gets past them (to a missing file)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from google.protobuf import json_format

from alignment_trainer._gen.alignment.v1 import coordinator_pb2
from alignment_trainer.api.contracts import trainer_pb2
from alignment_trainer.api.jobspec import InvalidSpec, parse_job_spec
from alignment_trainer.api.ranges import range_violations
from conftest import REPO

CASES = json.loads((REPO / "libs/contracts/testing/range-cases.json").read_text())


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` merged in as range-cases.json says: objects key by key, a null removes the key."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def refusal(changes: dict[str, Any], tmp_path) -> InvalidSpec:
    spec = json_format.ParseDict(merge(CASES["jobSpecBase"], changes), trainer_pb2.JobSpec())
    with pytest.raises(InvalidSpec) as err:
        parse_job_spec(spec, default_output_dir=tmp_path, default_dro_address="localhost:1")
    return err.value


def test_the_base_gets_past_the_ranges(tmp_path) -> None:
    err = refusal({}, tmp_path)
    assert err.field == "spec.preference.init.uri"
    assert "no such directory" in err.reason


@pytest.mark.parametrize("case", CASES["jobSpec"], ids=[c["field"] for c in CASES["jobSpec"]])
def test_out_of_range_values_are_refused_as_in_typescript(case, tmp_path) -> None:
    err = refusal(case["set"], tmp_path)
    assert (err.field, err.reason) == (case["field"], case["description"])


@pytest.mark.parametrize("case", CASES["runSpec"], ids=[c["field"] for c in CASES["runSpec"]])
def test_run_spec_violations_match_the_coordinators(case) -> None:
    spec = json_format.ParseDict(merge(CASES["runSpecBase"], case["set"]), coordinator_pb2.RunSpec())
    field, description = range_violations(spec)[0]
    assert ("spec." + field, description) == (case["field"], case["description"])


def test_paths_of_list_items_and_values_are_written_as_typescript_writes_them() -> None:
    spec = coordinator_pb2.RunSpec(rounds=21)
    spec.generation.stop.extend(["###", ""])
    spec.loss.dnd_lambda_schedule.extend([0.5, math.nan])
    assert range_violations(spec) == [
        ("rounds", "must be less than or equal to 20, got 21"),
        ("generation.stop[1]", 'must be at least 1 characters, got ""'),
        ("loss.dnd_lambda_schedule[1]", "must be greater than or equal to 0, got NaN"),
        ("loss.dnd_lambda_schedule[1]", "must be finite, got NaN"),
    ]
