"""The field an INVALID_ARGUMENT names, read from the call's trailers (issue 13).

The services put a serialized google.rpc.Status in the ``grpc-status-details-bin`` trailer, its details an Any
holding a google.rpc.BadRequest whose field violations name the bad field (``spec.loss.wdro.delta``). This client
depends on grpcio and protobuf only, so the few fields are read here by their numbers: Status{3 repeated Any
details}, Any{1 string type_url, 2 bytes value}, BadRequest{1 repeated FieldViolation}, FieldViolation{1 string
field, 2 string description}. Services of the release before sent only the ``invalid-field`` trailer, read when
there are no BadRequest details.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

STATUS_DETAILS_KEY = "grpc-status-details-bin"
BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest"
LEGACY_FIELD_KEY = "invalid-field"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field of one message: ints for varints, bytes for length-delimited ones."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            yield number, data[pos:pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def field_violations(status: bytes) -> list[tuple[str, str]]:
    """(field, description) of every BadRequest field violation in a serialized google.rpc.Status."""
    found: list[tuple[str, str]] = []
    for number, any_bytes in _fields(status):
        if number != 3 or not isinstance(any_bytes, bytes):
            continue
        parts = dict(_fields(any_bytes))
        if parts.get(1) != BAD_REQUEST_TYPE_URL.encode():
            continue
        for number_v, violation in _fields(parts.get(2, b"")):
            if number_v == 1 and isinstance(violation, bytes):
                named = dict(_fields(violation))
                found.append((bytes(named.get(1, b"")).decode(), bytes(named.get(2, b"")).decode()))
    return found


def invalid_field(trailers: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The field a call's trailers name: the first BadRequest violation's, else the ``invalid-field`` trailer's."""
    items = list(trailers or ())
    for key, value in items:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                violations = field_violations(value)
            except ValueError:
                violations = []
            if violations:
                return violations[0][0]
    for key, value in items:
        if key == LEGACY_FIELD_KEY:
            return value.decode() if isinstance(value, bytes) else value
    return None
