import { createHash } from 'node:crypto';
import { Xoshiro128StarStar } from '@alignment/random';

/**
 * The seed of one stage (or one seeded step inside a stage) as a pure function of the run's seed, the round and a
 * label: a resumed or re-executed stage gets the same seed, so it produces the same artifacts. 48 bits, so it is
 * exact both in a JS number and in a proto uint64.
 *
 * Labels in use: the stage names (GENERATE, JUDGE, LEARN, EVALUATE) and, inside stages, `label-noise` (round 0),
 * `eval-baseline` (π_init's fixed evaluation sample), `eval-bootstrap` (the win-rate interval) and
 * `seed-replay` (the seed pairs a round replays).
 */
export function deriveSeed(runSeed: number | bigint | string, round: number, label: string): number {
  const digest = createHash('sha256').update(`alignment.coordinator/seed/v1|${String(runSeed)}|${round}|${label}`).digest();
  return digest.readUIntBE(0, 6);
}

/** The workspace generator (libs/random), seeded through sha256 of the seed. */
export class SeededRandom extends Xoshiro128StarStar {
  constructor(seed: number | string) {
    const digest = createHash('sha256').update(`alignment.coordinator/rng/v1|${String(seed)}`).digest();
    super([digest.readUInt32BE(0), digest.readUInt32BE(4), digest.readUInt32BE(8), digest.readUInt32BE(12)]);
  }
}
