/** Helpers the per-service case modules share: well-formed requests built with the ts-proto codecs. */
import type { CaseSpec, Expectation, RpcInfo, ServiceName } from '../model';
import type { Labelled } from '../values';

/** What a ts-proto message namespace provides (StartRunRequest, SolveRequest, ...). */
export interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  fromPartial(object: any): T;
}

type MethodDefinitions = Record<string, { path: string; responseStream: boolean }>;

/** The RPCs of a ts-proto service definition, by the proto's method names. */
export function rpcsOf(service: ServiceName, definition: MethodDefinitions): Record<string, RpcInfo> {
  const out: Record<string, RpcInfo> = {};
  for (const method of Object.values(definition)) {
    const rpc = method.path.split('/')[2];
    out[rpc] = { service, rpc, path: method.path, streaming: method.responseStream };
  }
  return out;
}

/** Encodes a message given as a plain object (ts-proto's fromPartial fills the rest). */
export function encode<T>(codec: Codec<T>, message: object): Uint8Array {
  return codec.encode(codec.fromPartial(message)).finish();
}

/**
 * A variant of a valid request: `base()` builds a fresh valid request object, `edit` breaks one field of it. Encoded
 * lazily, when the case runs.
 */
export function variant<T extends object>(
  codec: Codec<any>,
  base: () => T,
  name: string,
  expect: Expectation,
  edit: (request: T) => void,
): CaseSpec {
  return {
    name,
    expect,
    build: () => {
      const request = base();
      edit(request);
      return encode(codec, request);
    },
  };
}

/** A value, or a function that makes it when the case runs (1 MiB strings are not kept for the whole run). */
export type Lazy<V> = V | (() => V);

const resolve = <V>(value: Lazy<V>): V => (typeof value === 'function' ? (value as () => V)() : value);

/** One case per bad value for a field: `family:field=label`. */
export function perValue<T extends object, V>(
  codec: Codec<any>,
  base: () => T,
  family: string,
  field: string,
  values: readonly Labelled<Lazy<V>>[],
  expect: Expectation | ((label: string) => Expectation),
  set: (request: T, value: V) => void,
): CaseSpec[] {
  return values.map(([label, value]) =>
    variant(codec, base, `${family}:${field}=${label}`, typeof expect === 'function' ? expect(label) : expect, (r) => set(r, resolve(value))),
  );
}

/** Sets a value by a dotted path of property names, creating the objects on the way (`spec.loss.beta`). */
export function setPath(target: any, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    node = node[key];
  }
  node[keys[keys.length - 1]] = value;
}

/** Cases that set one field, given by its dotted path, to each value of a list. */
export function fieldCases<T extends object, V>(
  codec: Codec<any>,
  base: () => T,
  family: string,
  paths: readonly string[],
  values: readonly Labelled<Lazy<V>>[],
  expect: Expectation | ((label: string) => Expectation),
  wrap: (value: V) => unknown = (v) => v,
): CaseSpec[] {
  return paths.flatMap((path) => perValue(codec, base, family, path, values, expect, (r, v) => setPath(r, path, wrap(v))));
}

/** A raw case: hand-written bytes (tools/fuzz/wire.ts) for values the generated encoders cannot write. */
export function rawCase(name: string, expect: Expectation, bytes: () => Uint8Array): CaseSpec {
  return { name, expect, build: bytes };
}
