import { InvalidArgumentError } from './errors';

// Small checks that throw InvalidArgumentError naming the field, so every service rejects bad input the same way.

export function requireFinite(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(field, `must be a finite number, got ${String(value)}`);
  }
  return value;
}

/** lo/hi bounds; `open` marks which ends are excluded. */
export function requireInRange(
  field: string,
  value: number,
  lo: number,
  hi: number,
  open: { lo?: boolean; hi?: boolean } = {},
): number {
  requireFinite(field, value);
  const belowLo = open.lo ? value <= lo : value < lo;
  const aboveHi = open.hi ? value >= hi : value > hi;
  if (belowLo || aboveHi) {
    const interval = `${open.lo ? '(' : '['}${lo}, ${hi}${open.hi ? ')' : ']'}`;
    throw new InvalidArgumentError(field, `must be in ${interval}, got ${value}`);
  }
  return value;
}

export function requireNonEmpty<T>(field: string, values: ArrayLike<T> | undefined): ArrayLike<T> {
  if (!values || values.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  return values;
}

export function requireNonEmptyString(field: string, value: string | undefined): string {
  if (!value || value.trim() === '') throw new InvalidArgumentError(field, 'is required');
  return value;
}

/** Every element finite; the reason names the first bad index. */
export function requireAllFinite(field: string, values: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new InvalidArgumentError(field, `element ${i} must be finite, got ${String(values[i])}`);
    }
  }
}

export function requireSameLength(field: string, values: ArrayLike<unknown>, otherField: string, other: ArrayLike<unknown>): void {
  if (values.length !== other.length) {
    throw new InvalidArgumentError(field, `has ${values.length} elements but ${otherField} has ${other.length}`);
  }
}

/** A shard of a prompt or response set (common.proto Shard): items i with i % count == index. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** The shard a request names, checked: count 0 or 1 (or no shard) is the whole set; index must be < count. */
export function requireShard(field: string, shard: ShardSpec | undefined): ShardSpec {
  const count = shard?.count ?? 0;
  const index = shard?.index ?? 0;
  if (count <= 1) {
    if (index !== 0) throw new InvalidArgumentError(`${field}.index`, `must be 0 when ${field}.count is ${count}, got ${index}`);
    return { index: 0, count: 1 };
  }
  if (index >= count) throw new InvalidArgumentError(`${field}.index`, `must be < ${field}.count (${count}), got ${index}`);
  return { index, count };
}

/** Whether item `i` (its index in the whole set) belongs to the shard. */
export function inShard(i: number, shard: ShardSpec): boolean {
  return i % shard.count === shard.index;
}
