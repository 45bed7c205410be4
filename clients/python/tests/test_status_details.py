"""The field a refused call names (issue 13): ClientError.field from the google.rpc.BadRequest details in the
``grpc-status-details-bin`` trailer, else from the ``invalid-field`` trailer of a service of the release before.

A real gRPC server on loopback answers GetRun as a test double of the coordinator; its details are built with
googleapis-common-protos (in the test venv, not a dependency of the client), so the client's own decoder is checked
against the canonical encoder. The full stack's INVALID_ARGUMENT is checked in test_client.py.
"""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from alignment_client import Client, ClientError
from alignment_client.status_details import field_violations, invalid_field


def bad_request(field: str, description: str) -> bytes:
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=f"invalid {field}: {description}")
    status.details.add().Pack(error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=field, description=description)]))
    return status.SerializeToString()


def get_run(request: bytes, context: grpc.ServicerContext) -> bytes:
    run_id = request[2:].decode()  # GetRunRequest{1: run_id}, one short string
    if run_id == "details":
        context.set_trailing_metadata((("grpc-status-details-bin", bad_request("spec.loss.beta", "must be > 0")),))
    elif run_id == "legacy":
        context.set_trailing_metadata((("invalid-field", "run_id"),))
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"refused {run_id}")


@pytest.fixture(scope="module")
def address():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(get_run)
    generic = grpc.method_handlers_generic_handler("alignment.v1.Coordinator", {"GetRun": handler})
    server.add_generic_rpc_handlers((generic,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@pytest.mark.parametrize(("run_id", "field"), [("details", "spec.loss.beta"), ("legacy", "run_id"), ("none", None)])
def test_client_error_names_the_field(address, run_id, field):
    with Client(address, token="") as client, pytest.raises(ClientError) as refused:
        client.get(run_id)
    assert (refused.value.code, refused.value.details, refused.value.field) == (
        grpc.StatusCode.INVALID_ARGUMENT, f"refused {run_id}", field)


def test_the_decoder_reads_what_the_canonical_encoder_writes():
    assert field_violations(bad_request("spec.items[2].uri", "no such file")) == [("spec.items[2].uri", "no such file")]
    other = status_pb2.Status(code=3)
    other.details.add().Pack(error_details_pb2.ErrorInfo(reason="x"))
    assert field_violations(other.SerializeToString()) == []
    assert invalid_field([("grpc-status-details-bin", b"\xff\xff\xff"), ("invalid-field", "run_id")]) == "run_id"
