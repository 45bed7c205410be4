"""Run files, read as the TS CLI reads them (tools/cli/src/run-file): YAML (PyYAML, the `yaml` extra) or JSON (by
the `.json` extension, no extra needed), holding a StartRunRequest (`run_id` and `spec`) or a bare RunSpec.

String values are interpolated from the environment (`${VAR}`, an error when VAR is unset; `${VAR:-default}`;
`$${` is a literal `${`), then checked against the proto: keys in snake_case or lowerCamelCase, enums by full name,
by the part after the prefix in any case (`spa`, `wdro-sr`) or by number, numbers also as numeric strings. Unknown
fields, wrong types, two members of one oneof and a field given twice raise RunFileError naming the field as the
coordinator does (`spec.loss.beta`). Every ArtifactRef uri without a scheme is resolved against the file's folder.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from alignment_client.contracts import coordinator_pb2


@dataclass(frozen=True)
class RunFile:
    """A run file's run_id ('' when it has none) and spec."""

    run_id: str
    spec: coordinator_pb2.RunSpec


class RunFileError(ValueError):
    """A run file that cannot be read or parsed, or a bad value; `field` names it (None: the file's fault)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field


def load_run_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> RunFile:
    """Reads a run file; its relative URIs are resolved against its own folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFileError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise RunFileError(f"{file}: is a directory") from None
    doc = parse_run_text(text, file.name)
    if doc is None:
        raise RunFileError(f"{file}: is empty")
    return run_from_document(doc, file.resolve().parent, os.environ if env is None else env)


def parse_run_text(text: str, name: str) -> Any:
    """The document in a run file's text: JSON for a `.json` name, else YAML."""
    if name.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise RunFileError(f"not valid JSON: {err}") from None
    try:
        import yaml
    except ModuleNotFoundError:
        raise RunFileError("YAML run files need PyYAML (pip install 'alignment-client[yaml]'); JSON ones do not") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RunFileError(f"not valid YAML: {err}") from None


def run_from_document(doc: Any, base_dir: str | os.PathLike[str], env: Mapping[str, str]) -> RunFile:
    """A parsed run file document as a run: interpolated, checked, its URIs resolved against `base_dir`."""
    if not isinstance(doc, dict):
        raise RunFileError("must be a mapping: a RunSpec, or `run_id` and `spec` (a StartRunRequest)")
    request = any(key in doc for key in ("spec", "run_id", "runId"))
    prefix = "" if request else "spec"
    doc = _interpolate_values(doc, env, prefix)
    if request:
        fields = _message(coordinator_pb2.StartRunRequest.DESCRIPTOR, doc, "", Path(base_dir))
        if "spec" not in fields:
            raise RunFileError("is required (the RunSpec)", "spec")
        parsed = json_format.ParseDict(fields, coordinator_pb2.StartRunRequest())
        return RunFile(parsed.run_id, parsed.spec)
    fields = _message(coordinator_pb2.RunSpec.DESCRIPTOR, doc, prefix, Path(base_dir))
    return RunFile("", json_format.ParseDict(fields, coordinator_pb2.RunSpec()))


# ------------------------------------------------------------------------------------------------- interpolation

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """One string with its `${...}` references expanded from `env` (ValueError says what is wrong)."""
    out, i = [], 0
    while (start := text.find("$", i)) >= 0:
        out.append(text[i:start])
        if text.startswith("$${", start):
            out.append("${")
            i = start + 3
        elif not text.startswith("${", start):
            out.append("$")
            i = start + 1
        else:
            end = text.find("}", start + 2)
            if end < 0:
                raise ValueError(f"unterminated '{text[start:]}' (write $${{ for a literal ${{)")
            out.append(_expand(text[start + 2 : end], env))
            i = end + 1
    return "".join(out) + text[i:]


def _expand(body: str, env: Mapping[str, str]) -> str:
    name, sep, default = body.partition(":-")
    if not _NAME.fullmatch(name):
        raise ValueError(f"'${{{body}}}' is not a variable reference: write ${{NAME}} or ${{NAME:-default}}")
    value = env.get(name)
    if sep:
        return default if not value else value
    if value is None:
        raise ValueError(f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)")
    return value


def _interpolate_values(value: Any, env: Mapping[str, str], at: str) -> Any:
    if isinstance(value, str):
        try:
            return interpolate(value, env)
        except ValueError as err:
            raise RunFileError(str(err), at) from None
    if isinstance(value, list):
        return [_interpolate_values(item, env, f"{at}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _interpolate_values(item, env, _join(at, str(key))) for key, item in value.items()}
    return value


# ------------------------------------------------------------------------------------------- proto normalisation

_ARTIFACT_REF = "alignment.v1.ArtifactRef"
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_INTEGER_BITS = {
    FieldDescriptor.TYPE_INT32: (True, 32), FieldDescriptor.TYPE_SINT32: (True, 32), FieldDescriptor.TYPE_SFIXED32: (True, 32),
    FieldDescriptor.TYPE_UINT32: (False, 32), FieldDescriptor.TYPE_FIXED32: (False, 32),
    FieldDescriptor.TYPE_INT64: (True, 64), FieldDescriptor.TYPE_SINT64: (True, 64), FieldDescriptor.TYPE_SFIXED64: (True, 64),
    FieldDescriptor.TYPE_UINT64: (False, 64), FieldDescriptor.TYPE_FIXED64: (False, 64),
}


def _join(at: str, name: str) -> str:
    return name if at == "" else f"{at}.{name}"


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {json.dumps(value) if isinstance(value, str) else value}"


def resolve_uri(uri: str, base_dir: Path) -> str:
    """A URI as written in a run file, made absolute: a path without a scheme is relative to `base_dir`."""
    trimmed = uri.strip()
    if trimmed == "" or _SCHEME.match(trimmed):
        return trimmed
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(trimmed)))


def _message(desc: Descriptor, value: Any, at: str, base_dir: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RunFileError(f"must be a mapping of {desc.name}'s fields, got {_describe(value)}", at or desc.name)
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    oneofs: dict[str, str] = {}
    for key, item in value.items():
        field = desc.fields_by_name.get(key) or next((f for f in desc.fields if f.json_name == key), None)
        if field is None:
            raise RunFileError(f"unknown field of {desc.name} (its fields: {', '.join(desc.fields_by_name)})", _join(at, str(key)))
        p = _join(at, field.name)
        if field.name in given:
            raise RunFileError(f"given twice (as {given[field.name]} and {key})", p)
        given[field.name] = key
        if item is None:
            continue
        oneof = field.containing_oneof
        if oneof is not None and oneof.name != f"_{field.name}":  # not proto3 `optional`'s synthetic oneof
            if oneof.name in oneofs:
                raise RunFileError(f"{oneofs[oneof.name]} is given too: they are alternatives (oneof {oneof.name}), give one", p)
            oneofs[oneof.name] = p
        out[field.name] = _field(field, item, p, base_dir, desc.full_name == _ARTIFACT_REF and field.name == "uri")
    return out


def _field(field: FieldDescriptor, value: Any, at: str, base_dir: Path, is_uri: bool) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, dict):
            raise RunFileError(f"must be a mapping, got {_describe(value)}", at)
        item_field = field.message_type.fields_by_name["value"]
        return {str(k): _single(item_field, v, f"{at}.{k}", base_dir, False) for k, v in value.items()}
    if field.is_repeated:
        if not isinstance(value, list):
            raise RunFileError(f"must be a list, got {_describe(value)}", at)
        return [_single(field, item, f"{at}[{i}]", base_dir, False) for i, item in enumerate(value)]
    return _single(field, value, at, base_dir, is_uri)


def _single(field: FieldDescriptor, value: Any, at: str, base_dir: Path, is_uri: bool) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _message(field.message_type, value, at, base_dir)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field.enum_type, value, at)
    if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        if not isinstance(value, str):
            raise RunFileError(f"must be a string, got {_describe(value)} (quote it)", at)
        return resolve_uri(value, base_dir) if is_uri else value
    if field.type == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise RunFileError(f"must be true or false, got {_describe(value)}", at)
    number = _numeric(value)
    if number is None or not math.isfinite(number):
        raise RunFileError(f"must be a number, got {_describe(value)}", at)
    if field.type in _INTEGER_BITS:
        signed, bits = _INTEGER_BITS[field.type]
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if number != int(number):
            raise RunFileError(f"must be an integer, got {number}", at)
        if not low <= int(number) <= high:
            raise RunFileError(f"must be an integer in [{low}, {high}], got {int(number)}", at)
        return int(number)
    return float(number)


def _numeric(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and value.strip() and re.fullmatch(r"[\s0-9eE.+-]+", value):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return None
    return None


def _enum(desc: EnumDescriptor, value: Any, at: str) -> str:
    prefix = _shared_prefix([v.name for v in desc.values])
    found = None
    if isinstance(value, int) and not isinstance(value, bool):
        found = desc.values_by_number.get(value)
    elif isinstance(value, str):
        short = value.upper().replace("-", "_")
        found = desc.values_by_name.get(value) or desc.values_by_name.get(prefix + short)
    if found is None:
        names = ", ".join(v.name for v in desc.values if v.number != 0)
        raise RunFileError(f"must be one of {names} (or the part after {prefix or 'the prefix'}), got {_describe(value)}", at)
    return found.name


def _shared_prefix(names: list[str]) -> str:
    """CONFIGURATION_ of CONFIGURATION_SPA, ... (up to and including the last underscore all names share)."""
    common = os.path.commonprefix(names)
    return common[: common.rfind("_") + 1]
