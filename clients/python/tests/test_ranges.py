"""The client refuses a RunSpec value outside its buf.validate range before any call, naming the same field with the
same message as the coordinator: the cross-language cases of libs/contracts/testing/range-cases.json, which the
TypeScript specs (libs/contracts/src/ranges.spec.ts, the coordinator's run/spec/ranges.spec.ts) run too.

No coordinator listens at the client's address: a call would fail UNAVAILABLE, so INVALID_ARGUMENT is the local check.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from alignment_client import Client, ClientError
from alignment_client.contracts import coordinator_pb2
from alignment_client.ranges import range_violations
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


def run_spec(changes: dict[str, Any]) -> coordinator_pb2.RunSpec:
    return json_format.ParseDict(merge(CASES["runSpecBase"], changes), coordinator_pb2.RunSpec())


@pytest.fixture(scope="module")
def nowhere() -> str:
    """host:port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_the_base_is_in_range_and_reaches_the_network(nowhere) -> None:
    assert range_violations(run_spec({})) == []
    with Client(nowhere, timeout=2) as client, pytest.raises(ClientError) as err:
        client.run(run_spec({}), "ranges-base")
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("case", CASES["runSpec"], ids=[c["field"] for c in CASES["runSpec"]])
def test_out_of_range_values_are_refused_locally_like_the_coordinator(nowhere, case) -> None:
    with Client(nowhere, timeout=2) as client, pytest.raises(ClientError) as err:
        client.run(run_spec(case["set"]), "ranges")
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.field == case["field"]
    assert err.value.details == f"invalid {case['field']}: {case['description']}"


def test_run_files_are_checked_too(nowhere, tmp_path) -> None:
    doc = merge(CASES["runSpecBase"], {"rounds": 21})
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"run_id": "from-file", "spec": doc}))
    with Client(nowhere, timeout=2) as client, pytest.raises(ClientError) as err:
        client.run_file(path)
    assert (err.value.code, err.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "spec.rounds")
    assert err.value.details.endswith("must be less than or equal to 20, got 21")
