// checkRecord against proto/alignment/v1/formats.proto; services/trainer/tests/test_formats.py holds the same cases
// for the Python checker and the cross-language round trip.
import { checkRecord, FormatError, RECORD_FORMATS } from './formats';

const span = {
  trace_id: '0'.repeat(31) + '1',
  span_id: '0'.repeat(15) + '2',
  parent_span_id: null,
  name: 'trainer.step',
  service: 'trainer',
  kind: 'INTERNAL',
  start_unix_nanos: 1_796_556_688_645_000_000,
  end_unix_nanos: 1_796_556_688_646_000_000,
  status: 'OK',
  attributes: { step: 3 },
};

const pair = { prompt_index: 0, id: 'p-0', prompt: 'Say hi', chosen: 'hello', rejected: 'hi', chosen_score: -1.25, rejected_score: -3.5, margin: 2.25, method: 'spa_implicit' };

function fieldOf(fn: () => unknown): { field: string; reason: string } {
  try {
    fn();
  } catch (error) {
    if (error instanceof FormatError) return { field: error.field, reason: error.reason };
    throw error;
  }
  throw new Error('no FormatError');
}

describe('checkRecord', () => {
  it('returns a record that matches its message', () => {
    expect(checkRecord('SpanRecord', span)).toBe(span);
    expect(checkRecord('LabelledPair', pair)).toBe(pair);
    expect(RECORD_FORMATS).toEqual(['SpanRecord', 'LogLine', 'ResponsesRecord', 'LabelledPair', 'ArtifactManifest']);
  });

  it.each([
    ['a missing field', { span_id: undefined }, 'span_id', 'missing'],
    ['a null field that is not optional', { name: null }, 'name', 'must not be null'],
    ['a 64-bit integer as a string', { start_unix_nanos: '17' }, 'start_unix_nanos', 'must be an integer'],
    ['a fraction for an integer', { start_unix_nanos: 1.5 }, 'start_unix_nanos', 'must be an integer'],
    ['a number for a string', { status: 1 }, 'status', 'must be a string'],
    ['an array for a Struct', { attributes: [] }, 'attributes', 'must be a JSON object'],
    ['a key the message does not declare', { traceId: 'x' }, 'traceId', 'not a field of alignment.v1.SpanRecord'],
  ] as Array<[string, Record<string, unknown>, string, string]>)('names the field of %s', (_, change, field, reason) => {
    const record: Record<string, unknown> = { ...span, ...change };
    for (const key of Object.keys(change)) if (change[key] === undefined) delete record[key];
    const error = fieldOf(() => checkRecord('SpanRecord', record));
    expect(error.field).toBe(field);
    expect(error.reason).toContain(reason);
  });

  it('lets optional fields be absent or null and checks nested messages', () => {
    expect(() => checkRecord('LabelledPair', { ...pair, id: null })).not.toThrow();
    expect(() => checkRecord('LabelledPair', { ...pair, id: 3 })).not.toThrow();
    const { id: _id, ...withoutId } = pair;
    expect(() => checkRecord('LabelledPair', withoutId)).not.toThrow();
    expect(fieldOf(() => checkRecord('LabelledPair', { ...pair, margin: true }))).toEqual({ field: 'margin', reason: 'must be a finite number, got true' });
    const manifest = { files: [{ path: 'a', sha256: 'b'.repeat(64), size_bytes: -0.5 }], total_size_bytes: 1, version: 1 };
    expect(fieldOf(() => checkRecord('ArtifactManifest', manifest)).field).toBe('files[0].size_bytes');
    expect(fieldOf(() => checkRecord('ArtifactManifest', [])).field).toBe('(record)');
  });

  it('lets a log line carry its own fields and still checks the declared ones', () => {
    const line = { level: 30, time: '2026-01-01T00:00:00.000Z', service: 'judge', name: 'judge', msg: 'listening', port: 50053 };
    expect(checkRecord('LogLine', line)).toBe(line);
    expect(fieldOf(() => checkRecord('LogLine', { ...line, level: 'info' })).field).toBe('level');
  });
});
