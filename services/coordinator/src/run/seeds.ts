import { createHash } from 'node:crypto';

/**
 * The seed of one stage (or one seeded step inside a stage) as a pure function of the run's seed, the round and a
 * label: a resumed or re-executed stage gets the same seed, so it produces the same artifacts. 48 bits, so it is
 * exact both in a JS number and in a proto uint64.
 *
 * Labels in use: the stage names (GENERATE, JUDGE, LEARN, EVALUATE) and, inside stages, `label-noise` (round 0),
 * `eval-baseline` (π_init's fixed evaluation sample) and `eval-bootstrap` (the win-rate interval).
 */
export function deriveSeed(runSeed: number | bigint | string, round: number, label: string): number {
  const digest = createHash('sha256').update(`alignment.coordinator/seed/v1|${String(runSeed)}|${round}|${label}`).digest();
  return digest.readUIntBE(0, 6);
}

/**
 * xoshiro128** seeded through sha256: fast, well-distributed and identical on every platform (Math.random is
 * neither seedable nor reproducible).
 */
export class SeededRandom {
  private s: Uint32Array;

  constructor(seed: number | string) {
    const digest = createHash('sha256').update(`alignment.coordinator/rng/v1|${String(seed)}`).digest();
    this.s = new Uint32Array([digest.readUInt32BE(0), digest.readUInt32BE(4), digest.readUInt32BE(8), digest.readUInt32BE(12)]);
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new Error(`int(n) needs an integer n in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % n;
    }
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): number[] {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
