/**
 * A variant's RunSpec overrides (tools/campaign/README.md): any RunSpec fields, in proto3 JSON (snake_case or
 * lowerCamelCase names, enum values by name), deep-merged over the RunSpec the demo would run
 * (tools/demo/runs.ts runSpec). Because they go through the generated RunSpec.fromJSON, a field added to
 * proto/alignment/v1/coordinator.proto later (a new lever) is expressible without changing the campaign.
 */
import { RunSpec } from '@alignment/contracts';

/** Fields the campaign sets per cell itself: each has its own plan axis or is the cell's input. */
const MANAGED: ReadonlyMap<string, string> = new Map([
  ['configuration', 'the variant\'s `config`'],
  ['rounds', 'the section\'s `settings.rounds`'],
  ['seed', 'the section\'s `seeds`'],
  ['labelNoiseRate', 'the section\'s `noise`'],
  ['baseModel', 'the world\'s base model'],
  ['seedPairs', 'the world\'s gold seed pairs'],
  ['roundPrompts', 'the world\'s prompt sets'],
  ['promptSplit', 'the world\'s prompt sets'],
]);

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** proto3 JSON with every key in lowerCamelCase (the names RunSpec.toJSON writes and fromJSON prefers). */
function camelize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelize);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), camelize(v)]));
}

/** The value with every leaf made non-default, so that toJSON keeps each field the value names. */
function probe(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [1] : value.map(probe);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, probe(v)]));
  if (typeof value === 'number') return value === 0 ? 1 : value;
  if (typeof value === 'string') return value === '' || value.endsWith('_UNSPECIFIED') ? 'x' : value;
  return true;
}

/** The first path of `given` (keys as written) that `parsed` does not have, or whose enum name is unknown. */
function firstUnknown(given: unknown, parsed: unknown, where: string, checkEnums: boolean): string | undefined {
  if (isObject(given)) {
    for (const [key, value] of Object.entries(given)) {
      const here = `${where}.${key}`;
      if (!isObject(parsed) || !(camel(key) in parsed)) return checkEnums ? undefined : `${here}: not a RunSpec field`;
      const inner = firstUnknown(value, parsed[camel(key)], here, checkEnums);
      if (inner) return inner;
    }
  } else if (Array.isArray(given) && Array.isArray(parsed)) {
    for (const [i, value] of given.entries()) {
      const inner = firstUnknown(value, parsed[i], `${where}[${i}]`, checkEnums);
      if (inner) return inner;
    }
  } else if (!checkEnums && !Array.isArray(given) && isObject(parsed)) {
    return `${where}: expected a mapping (the field is a message), got ${JSON.stringify(given)}`;
  } else if (checkEnums && parsed === 'UNRECOGNIZED' && given !== 'UNRECOGNIZED') {
    return `${where}: unknown enum value ${JSON.stringify(given)}`;
  }
  return undefined;
}

/**
 * Throws `ErrorType` naming the field when `overrides` names a field RunSpec does not have, an unknown enum value,
 * or a field the campaign sets itself.
 */
export function checkOverrides(overrides: Json, where: string, ErrorType: new (message: string) => Error): void {
  for (const key of Object.keys(overrides)) {
    const managed = MANAGED.get(camel(key));
    if (managed) throw new ErrorType(`${where}.${key}: set by the campaign from ${managed}, not by overrides`);
  }
  let problem: string | undefined;
  try {
    problem =
      firstUnknown(overrides, RunSpec.toJSON(RunSpec.fromJSON(camelize(probe(overrides)))), where, false) ??
      firstUnknown(overrides, RunSpec.toJSON(RunSpec.fromJSON(camelize(overrides))), where, true);
  } catch (error) {
    problem = `${where}: ${(error as Error).message}`;
  }
  if (problem) throw new ErrorType(problem);
}

function merge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

/** `spec` with `overrides` deep-merged over it (objects merge key by key; lists and scalars replace). */
export function applyOverrides(spec: RunSpec, overrides: Json): RunSpec {
  if (Object.keys(overrides).length === 0) return spec;
  return RunSpec.fromJSON(merge(RunSpec.toJSON(spec), camelize(overrides)));
}
