"""The records shared with the TypeScript services (proto/alignment/v1/formats.proto, docs/formats.md): the checker
names the offending field, and each format makes the round trip between the languages. TypeScript writes (the
services' tracing and logger, the generator's and judge's record shapes, a manifest) and Python validates and
re-serialises to the same bytes; Python writes (tracing.py, logs.py, export.write_manifest) and TypeScript validates
(tools/testing/formats-roundtrip.ts, run under tsx as conftest.py runs the DroSolver)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from alignment_trainer import formats, logs, tracing
from alignment_trainer.training.data import load_pairs
from alignment_trainer.training.export import ArtifactMismatch, sha256_file, verify_artifact, verify_manifest, write_manifest
from conftest import REPO, TSX

ROUNDTRIP = REPO / "tools/testing/formats-roundtrip.ts"
FORMATS = {
    "SpanRecord": formats.SpanRecord,
    "LogLine": formats.LogLine,
    "ResponsesRecord": formats.ResponsesRecord,
    "LabelledPair": formats.LabelledPair,
    "ArtifactManifest": formats.ArtifactManifest,
}

SPAN = {"trace_id": "0" * 31 + "1", "span_id": "0" * 15 + "2", "parent_span_id": None, "name": "trainer.step",
        "service": "trainer", "kind": "INTERNAL", "start_unix_nanos": 1_796_556_688_645_123_456,
        "end_unix_nanos": 1_796_556_688_645_999_999, "status": "OK", "attributes": {"step": 3}}
PAIR = {"prompt_index": 0, "id": "p-0", "prompt": "Say hi", "chosen": "hello", "rejected": "hi", "chosen_score": -1.25,
        "rejected_score": -3.5, "margin": 2.25, "method": "spa_implicit"}


def _tsx(*args: str) -> subprocess.CompletedProcess:
    if not TSX.exists():
        pytest.fail(f"{TSX} is missing: run `npm ci` at the repo root")
    return subprocess.run([str(TSX), str(ROUNDTRIP), *args], cwd=REPO, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------------------------ the checker


@pytest.mark.parametrize(("change", "field", "reason"), [
    (lambda r: r.pop("span_id"), "span_id", "missing"),
    (lambda r: r.update(name=None), "name", "must not be null"),
    (lambda r: r.update(start_unix_nanos="17"), "start_unix_nanos", "must be an integer"),
    (lambda r: r.update(start_unix_nanos=1.5), "start_unix_nanos", "must be an integer"),
    (lambda r: r.update(status=1), "status", "must be a string"),
    (lambda r: r.update(attributes=[]), "attributes", "must be a JSON object"),
    (lambda r: r.update(traceId="x"), "traceId", "not a field of alignment.v1.SpanRecord"),
])
def test_a_span_record_that_does_not_match_names_the_field(change, field, reason):
    record = json.loads(json.dumps(SPAN))
    assert formats.check_record(record, formats.SpanRecord) is record
    change(record)
    with pytest.raises(formats.FormatError) as err:
        formats.check_record(record, formats.SpanRecord)
    assert err.value.field == field
    assert reason in err.value.reason
    assert str(err.value).startswith(f"{field}: ")


def test_optional_fields_may_be_absent_or_null_and_nested_messages_are_checked():
    formats.check_record({**PAIR, "id": None}, formats.LabelledPair)
    formats.check_record({k: v for k, v in PAIR.items() if k != "id"}, formats.LabelledPair)
    formats.check_record({**PAIR, "id": 3}, formats.LabelledPair)
    with pytest.raises(formats.FormatError, match=r"^margin: must be a finite number"):
        formats.check_record({**PAIR, "margin": True}, formats.LabelledPair)
    manifest = {"files": [{"path": "a", "sha256": "b" * 64, "size_bytes": 1}], "total_size_bytes": 1, "version": 1}
    formats.check_record(manifest, formats.ArtifactManifest)
    manifest["files"][0]["size_bytes"] = -0.5
    with pytest.raises(formats.FormatError, match=r"^files\[0\]\.size_bytes: must be an integer"):
        formats.check_record(manifest, formats.ArtifactManifest)
    with pytest.raises(formats.FormatError, match=r"^\(record\): must be a JSON object"):
        formats.check_record([], formats.ArtifactManifest)


def test_a_log_line_is_an_open_record_whose_own_fields_are_still_checked():
    line = {"level": 30, "time": 1, "name": "trainer", "msg": "listening", "port": 50055}
    formats.check_record(line, formats.LogLine)
    with pytest.raises(formats.FormatError, match=r"^level: must be an integer"):
        formats.check_record({**line, "level": "info"}, formats.LogLine)


# ------------------------------------------------------------------------------------------- TypeScript -> Python


def test_what_typescript_writes_python_validates_and_rewrites_byte_for_byte(tmp_path: Path):
    written = _tsx("write", str(tmp_path))
    assert written.returncode == 0, written.stderr
    (tmp_path / "LogLine.jsonl").write_text(written.stderr)  # the services log to stderr
    seen = {}
    for name, message in FORMATS.items():
        if name == "ArtifactManifest":
            text = (tmp_path / "ArtifactManifest.json").read_text()
            record = formats.check_record(json.loads(text), message)
            # export.write_json_atomic's conventions
            assert json.dumps(record, indent=2, sort_keys=True) + "\n" == text
            seen[name] = 1
            continue
        lines = (tmp_path / f"{name}.jsonl").read_text().splitlines()
        for line in lines:
            record = formats.check_record(json.loads(line), message)
            # The Python writers' separators; they escape non-ASCII (ensure_ascii), TypeScript writes it as UTF-8.
            assert json.dumps(record, separators=(",", ":"), ensure_ascii=False) == line
        seen[name] = len(lines)
    assert seen == {"SpanRecord": 2, "LogLine": 2, "ResponsesRecord": 2, "LabelledPair": 2, "ArtifactManifest": 1}
    # The trainer's reader takes the judge's pairs as they are.
    pairs = load_pairs(tmp_path / "LabelledPair.jsonl")
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [("Say hi", "hello", "hi"), ("p", "b", "a")]
    spans = [json.loads(line) for line in (tmp_path / "SpanRecord.jsonl").read_text().splitlines()]
    assert {s["span_id"] for s in spans} >= {s["parent_span_id"] for s in spans if s["parent_span_id"]}


# ------------------------------------------------------------------------------------------- Python -> TypeScript


def _python_spans(path: Path) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": tracing.SERVICE_NAME}),
                              id_generator=tracing.UrandomIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(tracing.JsonlSpanExporter(str(path))))
    tracer = provider.get_tracer("test_formats")
    with tracer.start_as_current_span("trainer.job preference", kind=SpanKind.INTERNAL):
        with tracer.start_as_current_span("trainer.step", attributes={"step": 3, "loss": 0.5, "tags": ("a", "b")}):
            pass
    provider.shutdown()


def _python_log_lines() -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("alignment_trainer.test_formats")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("listening", extra={"fields": {"port": 50055, "cpu": {"threads": 2}}})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("job failed")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_what_python_writes_typescript_validates(tmp_path: Path):
    _python_spans(tmp_path / "SpanRecord.jsonl")
    (tmp_path / "LogLine.jsonl").write_text(_python_log_lines())
    responses = [{"prompt_index": 2, "prompt": "p", "responses": ["a", "b"], "finish_reasons": ["eos", "eos"]}]
    for name, records in (("ResponsesRecord", responses), ("LabelledPair", [PAIR])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    write_manifest(model)
    (tmp_path / "ArtifactManifest.json").write_bytes((model / "manifest.json").read_bytes())

    for name, message in FORMATS.items():  # what Python writes passes its own check first
        path = tmp_path / (f"{name}.json" if name == "ArtifactManifest" else f"{name}.jsonl")
        texts = [path.read_text()] if name == "ArtifactManifest" else path.read_text().splitlines()
        for text in texts:
            formats.check_record(json.loads(text), message)

    checked = _tsx("check", str(tmp_path))
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert {name: r["records"] for name, r in report.items()} == {
        "SpanRecord": 2, "LogLine": 2, "ResponsesRecord": 1, "LabelledPair": 1, "ArtifactManifest": 1}
    # JavaScript numbers hold the trainer's nanosecond times to within 256 ns, so only spans do not re-serialise
    # byte for byte.
    assert {name for name, r in report.items() if r["identical"]} == {
        "LogLine", "ResponsesRecord", "LabelledPair", "ArtifactManifest"}


def test_typescript_names_the_field_of_a_record_that_does_not_match(tmp_path: Path):
    (tmp_path / "LabelledPair.jsonl").write_text(json.dumps({**PAIR, "chosen_score": "high"}) + "\n")
    checked = _tsx("check", str(tmp_path))
    assert checked.returncode == 1
    assert "LabelledPair record 1: chosen_score: must be a finite number" in checked.stderr


# ------------------------------------------------------------------------------------------------------ readers


def test_a_manifest_that_does_not_match_its_message_is_refused_naming_the_field(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    write_manifest(tmp_path)
    assert verify_manifest(tmp_path) == []
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"][0]["size_bytes"] = str(manifest["files"][0]["size_bytes"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_manifest(tmp_path)
    assert problems == ["manifest.json: files[0].size_bytes: must be an integer, got '2' (ArtifactManifest)"]
    with pytest.raises(ArtifactMismatch, match=r"files\[0\]\.size_bytes: must be an integer"):
        verify_artifact(tmp_path, sha256_file(tmp_path / "manifest.json"), "spec.preference.init")
