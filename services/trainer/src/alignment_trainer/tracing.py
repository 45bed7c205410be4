"""OpenTelemetry tracing of the trainer, with the TypeScript services' contract (libs/service-kit/src/tracing.ts).

    tracing.init_tracing()                     # once per process (server.start and the CLI call it)
    server = grpc.server(..., interceptors=[tracing.ServerInterceptor()])
    with tracing.tracer().start_as_current_span("trainer.job sft"): ...

Environment (the same as the TypeScript services):
    OTEL_TRACES_EXPORTER  none (default) | otlp | console | jsonl
        none     spans are created and propagated (W3C traceparent in gRPC metadata), not exported
        otlp     OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4317), batched
        console  one SpanRecord JSON object per line on stderr
        jsonl    one SpanRecord JSON object per line appended to OTEL_TRACES_FILE; the TypeScript services write the
                 same records, so one file can hold a span tree across TypeScript and Python processes
    OTEL_TRACES_FILE      the jsonl file

A SpanRecord is exactly tracing.ts's, both defined once by proto/alignment/v1/formats.proto (formats.py checks
records against it; docs/formats.md): trace_id, span_id, parent_span_id (null for a root), name, service
("trainer"), kind ("SERVER" | "CLIENT" | "INTERNAL" | "PRODUCER" | "CONSUMER"), start_unix_nanos, end_unix_nanos,
status ("UNSET" | "OK" | "ERROR"), attributes.

Spans of the trainer:
    alignment.v1.Trainer/<Method>   SERVER, one per RPC, child of the caller's traceparent (ServerInterceptor)
    trainer.job <kind>              INTERNAL, the whole run of a job; child of the StartJob SERVER span, whose
                                    context is stored with the job, so a job resumed after a restart continues in
                                    the same trace (kind: sft | preference)
    trainer.step                    INTERNAL, every TRAINER_TRACE_STEP_EVERY-th optimizer step (default 0 = none)
    alignment.v1.DroSolver/Solve    CLIENT, one per solve (api/dro_client.py), child of the step or job span; the
                                    DroSolver's SERVER span is its child
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

SERVICE_NAME = "trainer"
EXPORTERS = ("none", "otlp", "console", "jsonl")
TRACED_SERVICE_PREFIX = "/alignment.v1."

_provider: TracerProvider | None = None
_lock = threading.Lock()


class UrandomIdGenerator(IdGenerator):
    """Trace and span ids from os.urandom. The SDK's default draws them from Python's global `random`, which a
    training job seeds (training/, for reproducibility): ids then repeat from job to job of the same seed, and a
    span can even get its parent's id, which breaks every span tree the trainer exports."""

    def generate_span_id(self) -> int:
        while True:
            span_id = int.from_bytes(os.urandom(8), "big")
            if span_id != trace.INVALID_SPAN_ID:
                return span_id

    def generate_trace_id(self) -> int:
        while True:
            trace_id = int.from_bytes(os.urandom(16), "big")
            if trace_id != trace.INVALID_TRACE_ID:
                return trace_id

    def is_trace_id_random(self) -> bool:
        return True


def span_record(span: ReadableSpan) -> dict:
    """A finished span as tracing.ts's SpanRecord."""
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent is not None and parent.is_valid else None,
        "name": span.name,
        "service": str(span.resource.attributes.get("service.name", SERVICE_NAME)),
        "kind": span.kind.name,
        "start_unix_nanos": span.start_time,
        "end_unix_nanos": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (span.attributes or {}).items()},
    }


class JsonlSpanExporter(SpanExporter):
    """Appends one SpanRecord per line to a file (or writes them to a stream). Each batch is one write() on an
    O_APPEND file, so processes appending to the same file never interleave within a line."""

    def __init__(self, path: str | None = None, stream=None) -> None:
        self._path = path
        self._stream = stream
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(span_record(s), separators=(",", ":")) + "\n" for s in spans)
        if not text:
            return SpanExportResult.SUCCESS
        try:
            with self._lock:
                if self._stream is not None:
                    self._stream.write(text)
                    self._stream.flush()
                else:
                    fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    try:
                        os.write(fd, text.encode())
                    finally:
                        os.close(fd)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _processor(kind: str):
    if kind == "none":
        return None
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter())
    if kind == "console":
        return SimpleSpanProcessor(JsonlSpanExporter(stream=sys.stderr))
    if kind == "jsonl":
        path = os.environ.get("OTEL_TRACES_FILE", "")
        if not path:
            raise ValueError("OTEL_TRACES_EXPORTER=jsonl needs OTEL_TRACES_FILE (the file to append spans to)")
        return SimpleSpanProcessor(JsonlSpanExporter(path))
    raise ValueError(f"OTEL_TRACES_EXPORTER must be one of {', '.join(EXPORTERS)}; got {kind!r}")


def init_tracing(service_name: str = SERVICE_NAME, kind: str | None = None) -> None:
    """Registers the SDK tracer provider once per process (idempotent). A provider is registered even for `none`,
    so spans exist and their context propagates (as in the TypeScript services); only exporting is off."""
    global _provider
    with _lock:
        if _provider is not None:
            return
        chosen = (kind or os.environ.get("OTEL_TRACES_EXPORTER") or "none").strip().lower()
        processor = _processor(chosen)
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                                  id_generator=UrandomIdGenerator())
        if processor is not None:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _provider = provider


def shutdown_tracing() -> None:
    """Flushes and stops the exporter (losing spans must never block an exit)."""
    if _provider is not None:
        try:
            _provider.shutdown()
        except Exception:  # an unreachable OTLP collector, say
            pass


def tracer() -> trace.Tracer:
    return trace.get_tracer("alignment_trainer")


def inject_current() -> dict[str, str]:
    """The active context as W3C headers ({"traceparent": …, "tracestate"?: …}; empty without a valid span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """A context whose parent is the span named by carrier's traceparent (the root context without one)."""
    return propagate.extract(dict(carrier or {}))


# ------------------------------------------------------------------------------------------ gRPC server interceptor


def _metadata_carrier(metadata) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, bytes):
            continue
        carrier.setdefault(key.lower(), value)
    return carrier


def _finish(span: trace.Span, servicer_context: grpc.ServicerContext, error: BaseException | None) -> None:
    code = servicer_context.code() if hasattr(servicer_context, "code") else None
    if code is None:
        code = grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK
    if isinstance(code, int):  # grpcio may report the numeric value
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code != grpc.StatusCode.OK:
        # As tracing.ts: ERROR on a failed call, UNSET (not OK) on success.
        details = servicer_context.details() if hasattr(servicer_context, "details") else None
        if isinstance(details, bytes):
            details = details.decode(errors="replace")
        span.set_status(Status(StatusCode.ERROR, details or code.name))
    span.end()


class ServerInterceptor(grpc.ServerInterceptor):
    """Opens a SERVER span ``alignment.v1.<Service>/<Method>`` for every alignment.v1 RPC (health and reflection are
    not traced), as a child of the W3C traceparent in the call's metadata, and makes it the active span while the
    handler runs (for a server-streaming method: while each response is produced)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or not method.startswith(TRACED_SERVICE_PREFIX):
            return handler
        rpc = method[1:]
        carrier = _metadata_carrier(handler_call_details.invocation_metadata)

        def start() -> tuple[trace.Span, otel_context.Context]:
            parent = propagate.extract(carrier)
            span = tracer().start_span(rpc, context=parent, kind=SpanKind.SERVER,
                                       attributes={"rpc.system": "grpc", "rpc.method": rpc})
            return span, trace.set_span_in_context(span, parent)

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary_unary(request, servicer_context):
                span, ctx = start()
                token = otel_context.attach(ctx)
                error = None
                try:
                    return inner(request, servicer_context)
                except BaseException as err:
                    error = err
                    raise
                finally:
                    otel_context.detach(token)
                    _finish(span, servicer_context, error)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)

        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def unary_stream(request, servicer_context) -> Iterator:
                span, ctx = start()
                error = None
                try:
                    token = otel_context.attach(ctx)
                    try:
                        responses = iter(inner_stream(request, servicer_context))
                    finally:
                        otel_context.detach(token)
                    while True:
                        token = otel_context.attach(ctx)
                        try:
                            item = next(responses)
                        except StopIteration:
                            return
                        finally:
                            otel_context.detach(token)
                        yield item
                except BaseException as err:
                    error = err
                    raise
                finally:
                    _finish(span, servicer_context, error)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler  # no client-streaming methods in alignment.v1.Trainer


__all__ = [
    "EXPORTERS",
    "JsonlSpanExporter",
    "ServerInterceptor",
    "UrandomIdGenerator",
    "context_from",
    "init_tracing",
    "inject_current",
    "shutdown_tracing",
    "span_record",
    "tracer",
]
