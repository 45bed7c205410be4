// The jsonl and console exporters write SpanRecords: one JSON object per line, the same keys and value types as the
// Python trainer's (services/trainer/tests/test_tracing.py checks its side), so one file holds a cross-language tree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkRecord } from '@alignment/contracts';

const RECORD_KEYS = ['attributes', 'end_unix_nanos', 'kind', 'name', 'parent_span_id', 'service', 'span_id', 'start_unix_nanos', 'status', 'trace_id'];

/** A fresh copy of the tracing module (its provider is registered once per module instance), initialised with kind. */
function freshTracing(kind: 'jsonl' | 'console'): typeof import('./tracing') {
  let mod: typeof import('./tracing') | undefined;
  jest.isolateModules(() => {
    mod = jest.requireActual<typeof import('./tracing')>('./tracing');
  });
  mod!.initTracing('test-service', kind);
  return mod!;
}

async function outerAndInner(t: typeof import('./tracing')): Promise<void> {
  await t.withSpan('outer', () => t.withSpan('inner', async () => undefined, { kind: t.SpanKind.CLIENT, attributes: { a: 1, b: 'x' } }), {
    kind: t.SpanKind.SERVER,
  });
  await t.flushTracing();
}

function expectRecords(records: Array<Record<string, unknown>>): void {
  expect(records.map((r) => r.name)).toEqual(['inner', 'outer']);
  const [inner, outer] = records;
  for (const r of records) {
    expect(Object.keys(r).sort()).toEqual(RECORD_KEYS);
    expect(checkRecord('SpanRecord', r)).toBe(r); // proto/alignment/v1/formats.proto
    expect(r.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(r.span_id).toMatch(/^[0-9a-f]{16}$/);
    expect(Number.isInteger(r.start_unix_nanos) && Number.isInteger(r.end_unix_nanos)).toBe(true);
    expect(r.end_unix_nanos as number).toBeGreaterThanOrEqual(r.start_unix_nanos as number);
    expect(r.service).toBe('test-service');
  }
  expect([inner.kind, outer.kind]).toEqual(['CLIENT', 'SERVER']);
  expect([inner.status, outer.status]).toEqual(['OK', 'OK']);
  expect(inner.parent_span_id).toBe(outer.span_id);
  expect(outer.parent_span_id).toBeNull();
  expect(inner.trace_id).toBe(outer.trace_id);
  expect(inner.attributes).toEqual({ a: 1, b: 'x' });
  // Nanoseconds since the epoch, not milliseconds or [seconds, nanos] pairs.
  expect(Math.abs((outer.start_unix_nanos as number) / 1e6 - Date.now())).toBeLessThan(60_000);
}

afterEach(() => {
  // The provider, context manager and propagator are process globals: unregister them for the next fresh module.
  const api = jest.requireActual<typeof import('@opentelemetry/api')>('@opentelemetry/api');
  api.trace.disable();
  api.context.disable();
  api.propagation.disable();
  delete process.env.OTEL_TRACES_FILE;
  jest.restoreAllMocks();
});

test('jsonl appends one SpanRecord per line to OTEL_TRACES_FILE', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tracing-'));
  try {
    const file = path.join(dir, 'spans.jsonl');
    fs.writeFileSync(file, '{"written":"before"}\n'); // appended to, never truncated
    process.env.OTEL_TRACES_FILE = file;
    const t = freshTracing('jsonl');
    await outerAndInner(t);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines[0]).toBe('{"written":"before"}');
    expectRecords(lines.slice(1).map((l) => JSON.parse(l)));
    await t.shutdownTracing();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('console writes the same SpanRecord lines to stderr', async () => {
  const written: string[] = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  const t = freshTracing('console');
  await outerAndInner(t);
  const lines = written.join('').split('\n');
  expect(lines.pop()).toBe('');
  expectRecords(lines.map((l) => JSON.parse(l)));
  await t.shutdownTracing();
});
