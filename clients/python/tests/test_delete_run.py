"""Client.delete_run (DeleteRun) against the real stack (conftest.py): a run that ended is deleted with its directory
and records; a running one, someone else's and an unknown one are refused with the coordinator's codes."""

from __future__ import annotations

import os

import grpc
import pytest

from alignment_client import Client, ClientError, load_run_file
from alignment_client.contracts import common_pb2
from conftest import REPO, TOKENS, Stack


def micro(stack: Stack):
    return load_run_file(REPO / "examples/micro-run.yaml", {**os.environ, "DATA_DIR": str(stack.data_dir)})


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.code


def test_deletes_an_ended_run_and_refuses_the_rest(stack: Stack) -> None:
    run_dir = stack.data_dir / "runs" / "py-delete"
    with Client(stack.coordinator, token=TOKENS["alice"]) as alice, Client(stack.coordinator, token=TOKENS["bob"]) as bob:
        alice.run(micro(stack), run_id="py-delete")
        # Running: cancel it first.
        assert code_of(lambda: alice.delete_run("py-delete")) == grpc.StatusCode.FAILED_PRECONDITION
        alice.cancel("py-delete")
        ended = alice.wait("py-delete")
        assert ended.state == common_pb2.JOB_STATE_CANCELLED
        assert run_dir.is_dir()
        # Only its owner (or an admin) may delete it.
        assert code_of(lambda: bob.delete_run("py-delete")) == grpc.StatusCode.PERMISSION_DENIED
        assert run_dir.is_dir()

        before = alice.get("py-delete").disk_bytes
        deleted = alice.delete_run("py-delete")
        assert deleted.run_id == "py-delete"
        # Run.disk_bytes just before (a cancelled trainer job may still have been writing its last files).
        assert deleted.freed_bytes >= before > 0
        assert not run_dir.exists()
        assert "py-delete" not in [r.run_id for r in alice.ls()]
        assert code_of(lambda: alice.get("py-delete")) == grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: alice.delete_run("py-delete")) == grpc.StatusCode.NOT_FOUND
