import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelDirectoryError } from './errors';

/** A loaded model held for one request; `release` hands it back to the cache. */
export interface Lease<T> {
  value: T;
  release(): void;
}

interface Entry<T> {
  key: string;
  loading: Promise<T>;
  users: number;
  lastUsed: number;
}

/**
 * Keeps the most recently used models loaded between requests (loading an ONNX session costs seconds for a real
 * model; a judge call needs the policy and the reference every round). Entries are keyed by the directory's real
 * path, the modification time and size of its model.onnx (a directory rewritten in place is loaded afresh) and the
 * sha256 the caller expects, so `verify` (e.g. hashing every file against the directory's manifest, seconds for
 * gigabytes of weights) runs once per model, not once per request. Concurrent requests for one model share one
 * load. A model in use is never evicted; past `capacity` unused models are released, least recently used first.
 */
export class ModelCache<T extends { release(): Promise<void> }, V = never> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    /** `variant` is what acquire was given besides the directory (e.g. the server a remote model is served by). */
    private readonly load: (directory: string, variant?: V) => Promise<T>,
    readonly capacity = 2,
  ) {}

  /** `variant.key` tells variants of one directory apart in the cache; `variant.value` is passed to load. */
  async acquire(directory: string, check?: { sha256: string; verify: () => Promise<void> }, variant?: { key: string; value: V }): Promise<Lease<T>> {
    const key = `${cacheKey(directory)}\0${check?.sha256 ?? ''}\0${variant?.key ?? ''}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const loading = (async () => {
        await check?.verify();
        return this.load(directory, variant?.value);
      })();
      entry = { key, loading, users: 0, lastUsed: 0 };
      this.entries.set(key, entry);
      // A failed load is not cached: the next request tries again (the directory may have been fixed).
      entry.loading.catch(() => this.entries.delete(key));
    }
    entry.users += 1;
    entry.lastUsed = Date.now();
    let value: T;
    try {
      value = await entry.loading;
    } catch (error) {
      entry.users -= 1;
      throw error;
    }
    const held = entry;
    let released = false;
    return {
      value,
      release: () => {
        if (released) return;
        released = true;
        held.users -= 1;
        held.lastUsed = Date.now();
        this.evict();
      },
    };
  }

  /** Releases every unused model (a service's shutdown). */
  async clear(): Promise<void> {
    const idle = [...this.entries.values()].filter((e) => e.users === 0);
    for (const e of idle) this.entries.delete(e.key);
    await Promise.all(idle.map((e) => e.loading.then((v) => v.release()).catch(() => undefined)));
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(): void {
    const idle = [...this.entries.values()].filter((e) => e.users === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    let excess = this.entries.size - this.capacity;
    for (const e of idle) {
      if (excess <= 0) break;
      this.entries.delete(e.key);
      void e.loading.then((v) => v.release()).catch(() => undefined);
      excess -= 1;
    }
  }
}

function cacheKey(directory: string): string {
  let real: string;
  try {
    real = fs.realpathSync(directory);
  } catch {
    throw new ModelDirectoryError(path.resolve(directory), 'no such directory');
  }
  try {
    const stat = fs.statSync(path.join(real, 'model.onnx'));
    return `${real}\0${stat.mtimeMs}\0${stat.size}`;
  } catch {
    return `${real}\0missing`;
  }
}
