import * as fs from 'node:fs';
import {
  context,
  propagation,
  trace,
  SpanKind,
  SpanStatusCode,
  ROOT_CONTEXT,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator, ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import type { Metadata } from '@grpc/grpc-js';

/**
 * Which exporter OTEL_TRACES_EXPORTER selects. Propagation (W3C traceparent in gRPC metadata) is always on, so a
 * trace stays whole across services even where nothing is exported.
 * - `none` (default): spans are created and propagated, not exported.
 * - `otlp`: OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4317), batched.
 * - `console`: one SpanRecord JSON object per line on stderr (as the Python trainer's `console`).
 * - `jsonl`: one SpanRecord JSON object per line appended to OTEL_TRACES_FILE (tests of multi-process span trees;
 *   the Python trainer writes the same records, and every export is one O_APPEND write, so several processes can
 *   share one file).
 * - `memory`: kept in process, read with `memorySpans()` (unit tests).
 */
export type TracesExporterKind = 'none' | 'otlp' | 'console' | 'jsonl' | 'memory';

/**
 * A finished span as the jsonl and console exporters write it, one JSON object per line, in every service (the
 * Python trainer's tracing.span_record is the same; both are proto/alignment/v1/formats.proto's SpanRecord,
 * docs/formats.md): ids in lowercase hex (32 and 16 digits), `parent_span_id` null
 * for a root, times in integer nanoseconds since the epoch.
 */
export interface SpanRecord {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  service: string;
  kind: string;
  start_unix_nanos: number;
  end_unix_nanos: number;
  status: 'UNSET' | 'OK' | 'ERROR';
  attributes: Record<string, unknown>;
}

let provider: BasicTracerProvider | undefined;
let memoryExporter: InMemorySpanExporter | undefined;
let serviceNameInUse = 'unknown';

/** SpanRecord lines appended to a file (one O_APPEND write per export), or written to stderr without one. */
class JsonlSpanExporter implements SpanExporter {
  constructor(private readonly file?: string) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const lines = spans.map((s) => JSON.stringify(toSpanRecord(s))).join('\n');
    try {
      if (lines && this.file === undefined) process.stderr.write(lines + '\n');
      else if (lines) fs.appendFileSync(this.file!, lines + '\n');
      done({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function toSpanRecord(s: ReadableSpan): SpanRecord {
  // An integer-valued double: exact to 256 ns today (the clock behind it is coarser), written as a JSON integer.
  const toNanos = ([sec, ns]: [number, number]) => Math.round(sec * 1e9 + ns);
  return {
    trace_id: s.spanContext().traceId,
    span_id: s.spanContext().spanId,
    parent_span_id: s.parentSpanContext?.spanId ?? null,
    name: s.name,
    service: String(s.resource.attributes['service.name'] ?? serviceNameInUse),
    kind: SpanKind[s.kind],
    start_unix_nanos: toNanos(s.startTime),
    end_unix_nanos: toNanos(s.endTime),
    status: (['UNSET', 'OK', 'ERROR'] as const)[s.status.code],
    attributes: { ...s.attributes },
  };
}

function exporterFromEnv(kind: TracesExporterKind): SpanProcessor | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'otlp':
      return new BatchSpanProcessor(new OTLPTraceExporter());
    case 'console':
      return new SimpleSpanProcessor(new JsonlSpanExporter());
    case 'jsonl': {
      const file = process.env.OTEL_TRACES_FILE;
      if (!file) throw new Error('OTEL_TRACES_EXPORTER=jsonl needs OTEL_TRACES_FILE (the file to append spans to)');
      return new SimpleSpanProcessor(new JsonlSpanExporter(file));
    }
    case 'memory':
      memoryExporter = new InMemorySpanExporter();
      return new SimpleSpanProcessor(memoryExporter);
    default:
      throw new Error(`OTEL_TRACES_EXPORTER must be one of none, otlp, console, jsonl, memory; got '${kind}'`);
  }
}

/** Registers the tracer provider, context manager and W3C propagator once per process. Idempotent. */
export function initTracing(serviceName: string, kind?: TracesExporterKind): void {
  if (provider) return;
  serviceNameInUse = serviceName;
  const chosen = kind ?? ((process.env.OTEL_TRACES_EXPORTER ?? 'none') as TracesExporterKind);
  const processor = exporterFromEnv(chosen);
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: processor ? [processor] : [],
  });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

export function tracer(): Tracer {
  return trace.getTracer('alignment');
}

/** Finished spans of the `memory` exporter (unit tests). */
export function memorySpans(): ReadableSpan[] {
  return memoryExporter ? memoryExporter.getFinishedSpans() : [];
}

export function resetMemorySpans(): void {
  memoryExporter?.reset();
}

export async function flushTracing(): Promise<void> {
  await provider?.forceFlush().catch(() => undefined);
}

export async function shutdownTracing(): Promise<void> {
  // With the OTLP exporter and no collector listening, shutdown rejects; losing spans must not block an exit.
  await provider?.shutdown().catch(() => undefined);
}

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key).map(String);
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

const metadataSetter: TextMapSetter<Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** The caller's trace context carried in gRPC metadata (W3C traceparent / tracestate). */
export function extractContext(metadata: Metadata): Context {
  return propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

export function injectContext(metadata: Metadata, ctx: Context = context.active()): void {
  propagation.inject(ctx, metadata, metadataSetter);
}

/** Runs fn inside a new span (child of the active one); the span records errors and always ends. */
export async function withSpan<T>(
  name: string,
  fn: (span: Span) => Promise<T>,
  options: { kind?: SpanKind; parent?: Context; attributes?: Record<string, string | number | boolean> } = {},
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, parent);
  try {
    const result = await context.with(trace.setSpan(parent, span), () => fn(span));
    span.setStatus({ code: SpanStatusCode.OK });
    return result;
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
    throw error;
  } finally {
    span.end();
  }
}

export { SpanKind };
