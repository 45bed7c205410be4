"""google.rpc.BadRequest details on the trainer's INVALID_ARGUMENT statuses (issue 13).

Every INVALID_ARGUMENT message the trainer sends starts with the field's path (``spec.hparams.learning_rate: must
be finite, got nan``, api/servicer.py). ``status_details`` turns such a message into the standard rich error model:
a serialized google.rpc.Status {code, message, details: [Any(google.rpc.BadRequest{field_violations: [{field,
description}]})]} for the ``grpc-status-details-bin`` trailer, the bytes the Node services send
(libs/service-kit/src/bad-request.ts). The google.rpc messages come from googleapis-common-protos, pinned in
requirements-train.txt.
"""

from __future__ import annotations

import re

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

#: The trailer gRPC's rich error model puts the serialized google.rpc.Status in.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

# A field path as the trainer's messages begin with it: proto names joined by dots, list positions in brackets.
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*"
_FIELD_PREFIX = re.compile(rf"^({_NAME}(?:\.{_NAME})*): (.*)$", re.DOTALL)


def field_violation(details: str) -> tuple[str, str] | None:
    """(field, description) of a message ``field.path: what is wrong``, or None when it names no field."""
    match = _FIELD_PREFIX.match(details)
    return (match.group(1), match.group(2)) if match else None


def status_details(code: grpc.StatusCode, details: str) -> bytes | None:
    """The serialized google.rpc.Status for an INVALID_ARGUMENT whose message names a field; None otherwise."""
    if code != grpc.StatusCode.INVALID_ARGUMENT:
        return None
    violation = field_violation(details)
    if violation is None:
        return None
    bad_request = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=violation[0], description=violation[1])])
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=details)
    status.details.add().Pack(bad_request)
    return status.SerializeToString()


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str):
    """context.abort(code, details), with the BadRequest trailer when the status is a field's INVALID_ARGUMENT."""
    packed = status_details(code, details)
    if packed is not None:
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, packed),))
    return context.abort(code, details)
