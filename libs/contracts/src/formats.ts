import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  createFileRegistry,
  fromBinary,
  getOption,
  hasOption,
  ScalarType,
  type DescExtension,
  type DescField,
  type DescMessage,
  type FileRegistry,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

/**
 * The records the services share with the Python trainer through files and streams, checked against their one
 * definition, proto/alignment/v1/formats.proto (docs/formats.md); the trainer's alignment_trainer/formats.py applies
 * the same rules.
 *
 *   checkRecord('SpanRecord', JSON.parse(line))   // the record, or FormatError naming the field
 *
 * The messages are schemas of the JSON on disk, not protobuf's JSON mapping: keys are the proto field names, 64-bit
 * integers are JSON numbers, a field declared `optional` may be absent or null, a repeated field may be absent, every
 * other field must be present and not null, and other keys are errors unless the message is an open record.
 */
export type RecordFormat = 'SpanRecord' | 'LogLine' | 'ResponsesRecord' | 'LabelledPair' | 'ArtifactManifest';

export const RECORD_FORMATS: readonly RecordFormat[] = ['SpanRecord', 'LogLine', 'ResponsesRecord', 'LabelledPair', 'ArtifactManifest'];

/** A record that does not match its formats.proto message; `field` is the path of the offending key. */
export class FormatError extends Error {
  constructor(
    readonly recordType: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason} (${recordType})`);
    this.name = 'FormatError';
  }
}

const DESCRIPTOR_SET = path.join(__dirname, '..', 'gen', 'descriptor_set.binpb');

let loaded: { registry: FileRegistry; openRecord: DescExtension } | undefined;

function formats(): { registry: FileRegistry; openRecord: DescExtension } {
  if (!loaded) {
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(DESCRIPTOR_SET)));
    const openRecord = registry.getExtension('alignment.v1.open_record');
    if (!openRecord) throw new Error(`${DESCRIPTOR_SET} has no alignment.v1.open_record: run the contracts codegen`);
    loaded = { registry, openRecord };
  }
  return loaded;
}

const INT_RANGES: Partial<Record<ScalarType, [number, number]>> = {
  [ScalarType.INT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SINT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SFIXED32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.UINT32]: [0, 2 ** 32 - 1],
  [ScalarType.FIXED32]: [0, 2 ** 32 - 1],
  [ScalarType.INT64]: [-(2 ** 63), 2 ** 63 - 1],
  [ScalarType.SINT64]: [-(2 ** 63), 2 ** 63 - 1],
  [ScalarType.SFIXED64]: [-(2 ** 63), 2 ** 63 - 1],
  [ScalarType.UINT64]: [0, 2 ** 64 - 1],
  [ScalarType.FIXED64]: [0, 2 ** 64 - 1],
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkScalar(value: unknown, scalar: ScalarType, fail: (reason: string) => never): void {
  if (scalar === ScalarType.STRING) {
    if (typeof value !== 'string') fail('must be a string');
  } else if (scalar === ScalarType.BOOL) {
    if (typeof value !== 'boolean') fail('must be true or false');
  } else if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) {
    if (typeof value !== 'number' || !Number.isFinite(value)) fail('must be a finite number');
  } else if (INT_RANGES[scalar]) {
    const [low, high] = INT_RANGES[scalar]!;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) fail(high > 2 ** 32 ? 'must be an integer' : `must be an integer in [${low}, ${high}]`);
  } else {
    fail(`has a type formats.ts does not check (${ScalarType[scalar]})`);
  }
}

function checkMessageValue(value: unknown, message: DescMessage, fieldPath: string, top: string, fail: (reason: string) => never): void {
  switch (message.typeName) {
    case 'google.protobuf.Value':
      return;
    case 'google.protobuf.Struct':
      if (!isObject(value)) fail('must be a JSON object');
      return;
    case 'google.protobuf.ListValue':
      if (!Array.isArray(value)) fail('must be a JSON array');
      return;
    default:
      if (!isObject(value)) fail('must be a JSON object');
      checkMessage(value as Record<string, unknown>, message, `${fieldPath}.`, top);
  }
}

function checkField(record: Record<string, unknown>, field: DescField, prefix: string, top: string): void {
  const fieldPath = prefix + field.name;
  const value = record[field.name];
  const failAt = (where: string, got: unknown) => (reason: string): never => {
    throw new FormatError(top, where, `${reason}, got ${JSON.stringify(got)}`.slice(0, 300));
  };
  if (value === undefined || value === null) {
    if (field.proto.proto3Optional || (field.fieldKind === 'list' && value === undefined)) return;
    throw new FormatError(top, fieldPath, value === undefined ? 'missing' : 'must not be null');
  }
  switch (field.fieldKind) {
    case 'scalar':
      return checkScalar(value, field.scalar, failAt(fieldPath, value));
    case 'message':
      return checkMessageValue(value, field.message, fieldPath, top, failAt(fieldPath, value));
    case 'list': {
      if (!Array.isArray(value)) failAt(fieldPath, value)('must be a JSON array');
      (value as unknown[]).forEach((item, i) => {
        const fail = failAt(`${fieldPath}[${i}]`, item);
        if (field.listKind === 'scalar') checkScalar(item, field.scalar, fail);
        else if (field.listKind === 'message') checkMessageValue(item, field.message, `${fieldPath}[${i}]`, top, fail);
        else fail('has a type formats.ts does not check (enum)');
      });
      return;
    }
    default:
      throw new FormatError(top, fieldPath, `has a type formats.ts does not check (${field.fieldKind})`);
  }
}

function checkMessage(record: Record<string, unknown>, message: DescMessage, prefix: string, top: string): void {
  for (const field of message.fields) checkField(record, field, prefix, top);
  const { openRecord } = formats();
  if (hasOption(message, openRecord) && getOption(message, openRecord) === true) return;
  const known = new Set(message.fields.map((f) => f.name));
  const unknown = Object.keys(record).filter((key) => !known.has(key)).sort();
  if (unknown.length > 0) throw new FormatError(top, prefix + unknown[0], `not a field of ${message.typeName}`);
}

/** `record` (a parsed JSON value) if it matches the formats.proto message `format`, else FormatError naming the field. */
export function checkRecord<T = Record<string, unknown>>(format: RecordFormat, record: unknown): T {
  const message = formats().registry.getMessage(`alignment.v1.${format}`);
  if (!message) throw new Error(`${DESCRIPTOR_SET} has no alignment.v1.${format}: run the contracts codegen`);
  if (!isObject(record)) throw new FormatError(format, '(record)', `must be a JSON object, got ${JSON.stringify(record)}`.slice(0, 300));
  checkMessage(record, message, '', format);
  return record as T;
}
