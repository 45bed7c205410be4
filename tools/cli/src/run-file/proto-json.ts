import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFileRegistry, fromBinary, ScalarType, type DescEnum, type DescField, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';

/**
 * A parsed run file checked against the proto messages (the contracts' descriptor set, so every field of the proto
 * is known, with its type): keys in snake_case (proto names) or lowerCamelCase (JSON names), enums by name (full,
 * `CONFIGURATION_SPA`, or short and in any case, `spa`, `wdro-sr`) or number, numbers also as numeric strings (what
 * `${VAR}` gives). Unknown fields, wrong types, two members of one oneof and the same field given twice are errors
 * naming the field (InvalidArgumentError, `spec.loss.beta` as the coordinator names it). Comes back as proto3 JSON
 * (lowerCamelCase keys, full enum names) for ts-proto's fromJSON; the relative path of every ArtifactRef uri, at any
 * depth, is resolved against `baseDir`.
 */

const ARTIFACT_REF = 'alignment.v1.ArtifactRef';

let registry: FileRegistry | undefined;

/** A message of the contracts by full name (`alignment.v1.RunSpec`). */
export function messageType(typeName: string): DescMessage {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(DESCRIPTOR_SET_PATH)));
  const desc = registry.getMessage(typeName);
  if (!desc) throw new Error(`${DESCRIPTOR_SET_PATH} has no ${typeName}: run the contracts codegen`);
  return desc;
}

/** A URI as written in a run file, made absolute: a path without a scheme is relative to `baseDir`; `~/` is home. */
export function resolveUri(uri: string, baseDir: string): string {
  const trimmed = uri.trim();
  if (trimmed === '' || /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(trimmed)) return trimmed;
  if (trimmed === '~' || trimmed.startsWith('~/')) return path.join(os.homedir(), trimmed.slice(1));
  return path.resolve(baseDir, trimmed);
}

const fail = (at: string, reason: string): never => {
  throw new InvalidArgumentError(at, reason);
};
const join = (at: string, name: string) => (at === '' ? name : `${at}.${name}`);
const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const describe = (value: unknown) =>
  Array.isArray(value) ? 'a list' : isMapping(value) ? 'a mapping' : `${typeof value} ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;

/** The proto3 JSON of `value` as a `desc` message; `at` is its path in errors ('' at the top). */
export function normalizeMessage(desc: DescMessage, value: unknown, at: string, baseDir: string): Record<string, unknown> {
  if (!isMapping(value)) fail(at || desc.name, `must be a mapping of ${desc.name}'s fields, got ${describe(value)}`);
  const out: Record<string, unknown> = {};
  const givenAs = new Map<DescField, string>();
  const oneofs = new Map<string, string>();
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    const p = join(at, field?.name ?? key);
    if (!field) fail(p, `unknown field of ${desc.name}${suggestion(key, desc)}`);
    if (givenAs.has(field!)) fail(p, `given twice (as ${givenAs.get(field!)} and ${key})`);
    givenAs.set(field!, key);
    if (item === null || item === undefined) continue; // proto3 JSON: null is the default
    if (field!.oneof) {
      const other = oneofs.get(field!.oneof.name);
      if (other) fail(p, `${other} is given too: they are alternatives (oneof ${field!.oneof.name}), give one`);
      oneofs.set(field!.oneof.name, join(at, field!.name));
    }
    out[field!.jsonName] = normalizeField(field!, item, p, baseDir, desc.typeName === ARTIFACT_REF && field!.name === 'uri');
  }
  return out;
}

function normalizeField(field: DescField, value: unknown, at: string, baseDir: string, isUri: boolean): unknown {
  switch (field.fieldKind) {
    case 'scalar': {
      const scalar = normalizeScalar(field.scalar, value, at);
      return isUri ? resolveUri(scalar as string, baseDir) : scalar;
    }
    case 'enum':
      return normalizeEnum(field.enum, value, at);
    case 'message':
      return normalizeMessage(field.message, value, at, baseDir);
    case 'list': {
      if (!Array.isArray(value)) return fail(at, `must be a list, got ${describe(value)}`);
      return value.map((item, i) => {
        const p = `${at}[${i}]`;
        if (field.listKind === 'message') return normalizeMessage(field.message, item, p, baseDir);
        if (field.listKind === 'enum') return normalizeEnum(field.enum, item, p);
        return normalizeScalar(field.scalar, item, p);
      });
    }
    case 'map': {
      if (!isMapping(value)) return fail(at, `must be a mapping, got ${describe(value)}`);
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => {
          const p = `${at}.${key}`;
          if (field.mapKind === 'message') return [key, normalizeMessage(field.message, item, p, baseDir)];
          if (field.mapKind === 'enum') return [key, normalizeEnum(field.enum, item, p)];
          return [key, normalizeScalar(field.scalar, item, p)];
        }),
      );
    }
  }
}

const INTEGER_RANGES: Partial<Record<ScalarType, [number, number]>> = {
  [ScalarType.INT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SINT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SFIXED32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.UINT32]: [0, 2 ** 32 - 1],
  [ScalarType.FIXED32]: [0, 2 ** 32 - 1],
  [ScalarType.INT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SINT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SFIXED64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.UINT64]: [0, Number.MAX_SAFE_INTEGER],
  [ScalarType.FIXED64]: [0, Number.MAX_SAFE_INTEGER],
};

/** A number, or a numeric string (proto3 JSON allows both; `${VAR}` gives strings). */
function numeric(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && /^[\s0-9eE.+-]+$/.test(value)) return Number(value);
  return undefined;
}

function normalizeScalar(scalar: ScalarType, value: unknown, at: string): unknown {
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) {
    if (typeof value !== 'string') fail(at, `must be a string, got ${describe(value)} (quote it)`);
    return value;
  }
  if (scalar === ScalarType.BOOL) {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    return fail(at, `must be true or false, got ${describe(value)}`);
  }
  const number = numeric(value);
  if (number === undefined || !Number.isFinite(number)) return fail(at, `must be a number, got ${describe(value)}`);
  const range = INTEGER_RANGES[scalar];
  if (range) {
    if (!Number.isInteger(number)) fail(at, `must be an integer, got ${number}`);
    if (number < range[0] || number > range[1]) fail(at, `must be an integer in [${range[0]}, ${range[1]}], got ${number}`);
  }
  return number;
}

/** Short enum names as written in run files: `spa`, `SPA`, `wdro-sr` for CONFIGURATION_WDRO_SR. */
const shortName = (name: string) => name.toUpperCase().replace(/-/g, '_');

function normalizeEnum(desc: DescEnum, value: unknown, at: string): string {
  const found =
    typeof value === 'number'
      ? desc.values.find((v) => v.number === value)
      : typeof value === 'string'
        ? desc.values.find((v) => v.name === value || v.localName.toUpperCase() === shortName(value))
        : undefined;
  if (!found) {
    const names = desc.values.filter((v) => v.number !== 0).map((v) => v.name);
    fail(at, `must be one of ${names.join(', ')} (or the part after ${desc.sharedPrefix?.toUpperCase() ?? 'the prefix'}), got ${describe(value)}`);
  }
  return found!.name;
}

/** ` (did you mean x?)` for a near field name, else the message's fields. */
function suggestion(key: string, desc: DescMessage): string {
  const wanted = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const near = desc.fields.map((f) => ({ f, d: distance(wanted, f.name) })).sort((a, b) => a.d - b.d)[0];
  if (near && near.d <= Math.max(2, Math.floor(near.f.name.length / 4))) return ` (did you mean ${near.f.name}?)`;
  return ` (its fields: ${desc.fields.map((f) => f.name).join(', ')})`;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
