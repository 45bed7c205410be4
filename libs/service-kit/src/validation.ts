import { InvalidArgumentError } from '@alignment/errors';

// Request checks the generator and the judge share (the shard of a streaming request, a finite number), throwing
// InvalidArgumentError naming the field. Each service's other checks live with its domain (docs/architecture.md).

export function requireFinite(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(field, `must be a finite number, got ${String(value)}`);
  }
  return value;
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

/** The most UTF-8 bytes of one prompt or response a service takes: MAX_TEXT_BYTES, default 256 KiB. */
export function maxTextBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.MAX_TEXT_BYTES?.trim();
  return raw && /^[0-9]{1,10}$/.test(raw) && Number(raw) > 0 ? Number(raw) : 256 * 1024;
}

/**
 * A prompt or response within maxTextBytes, checked before it is tokenized or quoted (issue 12: a 10 MiB prompt
 * stalled the generator and the judge for ~10 s, failing their health checks). InvalidArgumentError naming the field
 * (and `where` in it: the file, line and key of a JSONL artifact's text).
 */
export function requireTextWithinLimit(field: string, text: string, where = '', limit = maxTextBytes()): string {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most texts are decided without measuring.
  if (text.length * 3 > limit) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limit) throw new InvalidArgumentError(field, `${where ? `${where} ` : ''}is ${bytes} bytes; at most ${limit} are taken (MAX_TEXT_BYTES)`);
  }
  return text;
}
