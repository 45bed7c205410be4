"""The records the trainer shares with the TypeScript services through files and streams, checked against their one
definition, proto/alignment/v1/formats.proto (docs/formats.md); libs/contracts/src/formats.ts applies the same rules.

    formats.check_record(record, formats.SpanRecord)      # the dict, or FormatError naming the field

    SpanRecord        a finished span (tracing.span_record)
    LogLine           a structured log line (logs.JsonFormatter)
    ResponsesRecord   a line of the generator's responses JSONL
    LabelledPair      a line of the judge's labelled-pairs JSONL (data.load_pairs reads prompt, chosen, rejected, the
                      optional chosen_finished, rejected_finished, and margin when method is "spa_implicit")
    ArtifactManifest  a directory artifact's manifest.json (export.write_manifest)

The messages are schemas of the JSON on disk, not protobuf's JSON mapping: keys are the proto field names, 64-bit
integers are JSON numbers, a field declared `optional` may be absent or null, a repeated field may be absent, every
other field must be present and not null, and other keys are errors unless the message is an open record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from alignment_trainer._gen.alignment.v1 import formats_pb2

SpanRecord = formats_pb2.SpanRecord.DESCRIPTOR
LogLine = formats_pb2.LogLine.DESCRIPTOR
ResponsesRecord = formats_pb2.ResponsesRecord.DESCRIPTOR
LabelledPair = formats_pb2.LabelledPair.DESCRIPTOR
ArtifactManifest = formats_pb2.ArtifactManifest.DESCRIPTOR

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


class FormatError(ValueError):
    """A record that does not match its formats.proto message; ``field`` is the path of the offending key."""

    def __init__(self, record_type: str, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason} ({record_type})")
        self.record_type = record_type
        self.field = field
        self.reason = reason


def _optional_fields(message: Descriptor) -> frozenset[str]:
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    return frozenset(f.name for f in proto.field if f.proto3_optional)


def _is_open(message: Descriptor) -> bool:
    return bool(message.GetOptions().Extensions[formats_pb2.open_record])


def _check_value(value: object, field: FieldDescriptor, path: str, top: str) -> None:
    def fail(reason: str) -> None:
        raise FormatError(top, path, f"{reason}, got {value!r}"[:300])

    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == "google.protobuf.Value":
            return
        if name == "google.protobuf.Struct":
            if not isinstance(value, dict):
                fail("must be a JSON object")
            return
        if name == "google.protobuf.ListValue":
            if not isinstance(value, list):
                fail("must be a JSON array")
            return
        if not isinstance(value, dict):
            fail("must be a JSON object")
        _check_message(value, field.message_type, path + ".", top)
    elif field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            fail("must be a string")
    elif field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            fail("must be true or false")
    elif field.type in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail("must be a finite number")
    elif field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            fail("must be an integer" if high > 2**32 else f"must be an integer in [{low}, {high}]")
    else:  # enums and bytes: no formats.proto field has them
        fail(f"has a type formats.py does not check ({field.type})")


def _check_message(record: Mapping, message: Descriptor, prefix: str, top: str) -> None:
    optional = _optional_fields(message)
    for field in message.fields:
        path = prefix + field.name
        if field.name not in record or record[field.name] is None:
            if field.name in optional or (field.is_repeated and field.name not in record):
                continue
            raise FormatError(top, path, "missing" if field.name not in record else "must not be null")
        value = record[field.name]
        if field.is_repeated:
            if not isinstance(value, list):
                raise FormatError(top, path, f"must be a JSON array, got {value!r}"[:300])
            for i, item in enumerate(value):
                _check_value(item, field, f"{path}[{i}]", top)
        else:
            _check_value(value, field, path, top)
    if not _is_open(message):
        unknown = sorted(set(record) - set(message.fields_by_name))
        if unknown:
            raise FormatError(top, prefix + unknown[0], f"not a field of {message.full_name}")


def check_record(record: object, message: Descriptor) -> dict:
    """``record`` (a parsed JSON object) if it matches ``message`` (one of this module's formats), else FormatError
    naming the first offending field."""
    if not isinstance(record, dict):
        raise FormatError(message.name, "(record)", f"must be a JSON object, got {type(record).__name__}")
    _check_message(record, message, "", message.name)
    return record


__all__ = [
    "ArtifactManifest",
    "FormatError",
    "LabelledPair",
    "LogLine",
    "ResponsesRecord",
    "SpanRecord",
    "check_record",
]
