"""The buf.validate ranges of the contracts, checked with protovalidate (issue 13).

The single-field ranges (learning_rate in (0, 1), fractions in [0, 1], ...) are declared once, as buf.validate
annotations in proto/alignment/v1/*.proto. The coordinator checks them with @bufbuild/protovalidate
(libs/contracts/src/ranges.ts); the trainer checks an incoming JobSpec with them here (api/jobspec.py), so both name
an out-of-range value with the same field path and message. Rules that relate fields stay in jobspec.py.
"""

from __future__ import annotations

import math
from typing import Any

import protovalidate
from google.protobuf.message import Message


def field_path(violation: protovalidate.Violation) -> str:
    """The violation's field as proto names joined by dots, list positions in brackets (``loss.stop[1]``), as
    @bufbuild/protovalidate's pathToString writes it."""
    out = ""
    for element in violation.proto.field.elements:
        out += ("." if out else "") + element.field_name
        subscript = element.subscript
        if subscript is not None and subscript.field == "index":
            out += f"[{subscript.value}]"
        elif subscript is not None:
            out += f"[{subscript.value!r}]"
    return out


def _shown(value: Any) -> str | None:
    """A scalar as JavaScript's String() shows it (the TypeScript side's "got" part), None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def range_violations(message: Message) -> list[tuple[str, str]]:
    """(field path, description) of every annotated field of ``message`` out of its range, in field order; empty
    when all are in range. The description is the rule's message with the value: ``must be greater than 0 and less
    than 1, got -1``."""
    found = []
    for violation in protovalidate.collect_violations(message):
        shown = _shown(violation.field_value)
        text = violation.proto.message
        found.append((field_path(violation), text if shown is None else f"{text}, got {shown}"))
    return found
