/**
 * Bytes that are not a valid request of any alignment.v1 method (every one fails to decode, so each must be
 * INVALID_ARGUMENT or, past the size limit, RESOURCE_EXHAUSTED), a few that decode to a default request (empty, an
 * unknown field) and the endless tail of mutations of a valid request.
 */
import type { CaseSpec } from '../model';
import { MIB } from '../values';
import { FuzzRng, WIRE, bytesField, tag, varint } from '../wire';

/** Over the services' 64 MiB receive limit (libs/service-kit limits.ts; the trainer's grpcio default is 4 MiB). */
export const OVERSIZED_BYTES = 64 * MIB + 1024;

const raw = (name: string, bytes: () => Uint8Array, expect: CaseSpec['expect'] = 'reject'): CaseSpec => ({ name: `raw:${name}`, build: bytes, expect });

/** Malformed bytes; each case fails to decode as every request message of alignment.v1. */
export function malformedCases(): CaseSpec[] {
  return [
    raw('truncated-varint', () => Buffer.from([0x08, 0xff])),
    raw('truncated-varint-long', () => Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
    raw('tag-only-length-delimited', () => Buffer.from([0x0a])),
    raw('length-past-end', () => Buffer.from([0x0a, 0x7f, 0x61, 0x62])),
    raw('length-2^32', () => Buffer.concat([tag(1, WIRE.bytes), varint(2n ** 32n), Buffer.from('x')])),
    raw('length-2^63', () => Buffer.concat([tag(1, WIRE.bytes), varint(2n ** 63n), Buffer.from('x')])),
    raw('wire-type-6', () => Buffer.from([0x0e, 0x00])),
    raw('wire-type-7', () => Buffer.from([0x0f, 0x00])),
    raw('start-group-unclosed', () => Buffer.from([0x0b, 0x10, 0x01])),
    raw('fixed64-truncated', () => Buffer.from([0x09, 0x01, 0x02, 0x03])),
    raw('fixed32-truncated', () => Buffer.from([0x0d, 0x01])),
    raw('oversized-64MiB+1KiB', () => Buffer.concat([bytesField(1, Buffer.alloc(OVERSIZED_BYTES, 0x61))])),
  ];
}

/** Bytes that decode (to a default request, or one with an unknown or wrongly typed field) or may not. */
export function oddButDecodableCases(): CaseSpec[] {
  return [
    raw('empty', () => Buffer.alloc(0), 'any'),
    raw('unknown-field-1MiB', () => bytesField(999, Buffer.alloc(MIB, 0x62)), 'any'),
    raw('unknown-fields-100k', () => Buffer.concat(Array.from({ length: 100_000 }, (_, i) => Buffer.from([0xb8, 0x3e, i & 0x7f]))), 'any'),
    raw('field-1-as-varint', () => Buffer.from([0x08, 0x01]), 'any'),
    raw('field-1-as-fixed64', () => Buffer.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8]), 'any'),
    raw('field-1-invalid-utf8', () => bytesField(1, Buffer.from([0xc3, 0x28, 0xff, 0xfe])), 'any'),
    // ts-proto's decoders skip a varint of any length where field 1 has another type.
    raw('overlong-varint-11-bytes', () => Buffer.concat([Buffer.from([0x08]), Buffer.alloc(10, 0xff), Buffer.from([0x01])]), 'any'),
    // ts-proto's decoders stop at a zero tag or an end-group tag (the rest is ignored), grpcio's refuse them.
    raw('field-number-0', () => Buffer.from([0x00, 0x01]), 'any'),
    raw('field-number-2^29', () => Buffer.concat([tag(2 ** 29, WIRE.varint), varint(1)]), 'any'),
    raw('end-group-unopened', () => Buffer.from([0x0c]), 'any'),
    // A string field 1 takes these bytes as its value.
    raw('nested-truncated', () => Buffer.from([0x0a, 0x04, 0x0a, 0x7f, 0x00, 0x00]), 'any'),
    raw('deep-nesting-100k', () => deepNesting(100_000), 'any'),
    raw('field-1-repeated-1000x', () => Buffer.concat(Array.from({ length: 1000 }, () => bytesField(1, Buffer.from([0x0a, 0x00])))), 'any'),
  ];
}

/** Random bytes of a few sizes: they may decode by chance, so any expected code will do. */
export function randomBytesCases(rng: FuzzRng): CaseSpec[] {
  return [1, 2, 3, 5, 8, 16, 64, 256, 4096, 65536].map((n, k) => {
    const seed = rng.nextUint32();
    return raw(`random-${n}-bytes#${k}`, () => new FuzzRng(String(seed), 'random-bytes').bytes(n), 'any');
  });
}

/** A request whose first field is a sub-message nested `depth` deep (recursion limits of the decoders). */
function deepNesting(depth: number): Buffer {
  // Built inside out without the quadratic copying of nested(): each level adds its tag and length in front.
  let inner = Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (let i = 0; i < depth; i++) {
    const prefix = Buffer.concat([tag(1, WIRE.bytes), varint(inner.length + parts.reduce((s, p) => s + p.length, 0))]);
    parts.unshift(prefix);
    if (parts.length > 64) {
      inner = Buffer.concat([...parts, inner]);
      parts.length = 0;
    }
  }
  return Buffer.concat([...parts, inner]);
}

/**
 * The k-th mutation of a valid request: a byte flipped, the message cut short, a random run spliced in, or bytes
 * appended. Deterministic for (seed, rpc, k).
 */
export function mutationCase(seedRequest: () => Uint8Array, seed: string, rpcLabel: string, k: number): CaseSpec {
  const kinds = ['flip', 'cut', 'splice', 'append'] as const;
  const kind = kinds[k % kinds.length];
  return {
    name: `mutation:${kind}#${k}`,
    expect: 'any',
    build: () => {
      const rng = new FuzzRng(seed, `${rpcLabel}/mutation/${k}`);
      const base = Buffer.from(seedRequest());
      if (base.length === 0) return rng.bytes(1 + rng.int(32));
      const at = rng.int(base.length);
      switch (kind) {
        case 'flip':
          for (let i = 0; i < 1 + rng.int(4); i++) base[rng.int(base.length)] ^= 1 << rng.int(8);
          return base;
        case 'cut':
          return base.subarray(0, at);
        case 'splice':
          return Buffer.concat([base.subarray(0, at), rng.bytes(1 + rng.int(16)), base.subarray(at)]);
        default:
          return Buffer.concat([base, rng.bytes(1 + rng.int(64))]);
      }
    },
  };
}
