/**
 * Protobuf wire format by hand, for the requests the generated encoders cannot write: malformed bytes (truncated
 * varints, wrong wire types, lengths past the end) and values outside a field's type (a uint64 of 2^64 - 1 that
 * ts-proto's decoder refuses, a uint32 sent as a 40-bit varint, a negative enum).
 */
import { createHash } from 'node:crypto';
import { Xoshiro128StarStar } from '@alignment/random';

export const WIRE = { varint: 0, fixed64: 1, bytes: 2, startGroup: 3, endGroup: 4, fixed32: 5 } as const;

/** Base-128 varint of a non-negative integer (a negative one as its 64-bit two's complement, as int32/int64 are). */
export function varint(value: bigint | number): Buffer {
  let v = BigInt(value);
  if (v < 0n) v = (1n << 64n) + v;
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

export function tag(field: number, wireType: number): Buffer {
  return varint((BigInt(field) << 3n) | BigInt(wireType));
}

export function varintField(field: number, value: bigint | number): Buffer {
  return Buffer.concat([tag(field, WIRE.varint), varint(value)]);
}

/** A length-delimited field: a string (UTF-8), raw bytes or an encoded sub-message. */
export function bytesField(field: number, value: Uint8Array | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  return Buffer.concat([tag(field, WIRE.bytes), varint(bytes.length), bytes]);
}

export function doubleField(field: number, value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return Buffer.concat([tag(field, WIRE.fixed64), bytes]);
}

/** A nested message along a path of field numbers: message(1, 3, inner) = {1: {3: inner}}. */
export function nested(path: number[], inner: Uint8Array): Buffer {
  return path.reduceRight<Buffer>((acc, field) => bytesField(field, acc), Buffer.from(inner));
}

/** The seeded generator of the suite: the same (seed, label) gives the same stream on every machine. */
export class FuzzRng extends Xoshiro128StarStar {
  constructor(seed: string, label: string) {
    const digest = createHash('sha256').update(`${seed}\0${label}`).digest();
    super([digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12)]);
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.nextUint32() & 0xff;
    return out;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  shuffled<T>(items: readonly T[]): T[] {
    return this.permutation(items.length).map((i) => items[i]);
  }
}
