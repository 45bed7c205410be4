import { SeededRandom } from './seeds';
import type { JsonObject } from './data';

/**
 * Label noise for the noise table (docs/benchmark.md): exactly round(rate · N) seed pairs, chosen by a seeded
 * permutation, get chosen and rejected swapped (their scores too, when present). Exact in count rather than a coin
 * per pair, so two configurations at the same rate see the same number of wrong labels, and the same seed flips
 * the same pairs in every configuration.
 */
export interface LabelNoiseResult {
  pairs: JsonObject[];
  /** Indices (0-based, ascending) of the flipped pairs. */
  flipped: number[];
}

export function flipCount(numPairs: number, rate: number): number {
  return Math.round(rate * numPairs);
}

export function flipLabels(pairs: readonly JsonObject[], rate: number, seed: number): LabelNoiseResult {
  if (!(rate >= 0 && rate < 0.5)) throw new Error(`label noise rate must be in [0, 0.5), got ${rate}`);
  const count = flipCount(pairs.length, rate);
  const flipped = new SeededRandom(seed).permutation(pairs.length).slice(0, count).sort((a, b) => a - b);
  const flip = new Set(flipped);
  const out = pairs.map((pair, i) => {
    if (!flip.has(i)) return pair;
    const swapped: JsonObject = { ...pair, chosen: pair.rejected, rejected: pair.chosen };
    if ('chosen_score' in pair || 'rejected_score' in pair) {
      swapped.chosen_score = pair.rejected_score;
      swapped.rejected_score = pair.chosen_score;
    }
    return swapped;
  });
  return { pairs: out, flipped };
}

/**
 * RunSpec.round_label_noise_rate: exactly round(rate · N) of a round's labelled pairs, chosen by a seeded permutation,
 * get their responses swapped (chosen ↔ rejected, with their finish flags), while the judge's scores and margin stay
 * where they were: a judge wrong on those pairs, and as confident as on the others.
 */
export function flipRoundLabels(pairs: readonly JsonObject[], rate: number, seed: number): LabelNoiseResult {
  if (!(rate >= 0 && rate < 0.5)) throw new Error(`round label noise rate must be in [0, 0.5), got ${rate}`);
  const flipped = new SeededRandom(seed).permutation(pairs.length).slice(0, flipCount(pairs.length, rate)).sort((a, b) => a - b);
  const flip = new Set(flipped);
  const out = pairs.map((pair, i) => {
    if (!flip.has(i)) return pair;
    const swapped: JsonObject = { ...pair, chosen: pair.rejected, rejected: pair.chosen };
    if ('chosen_finished' in pair || 'rejected_finished' in pair) {
      swapped.chosen_finished = pair.rejected_finished;
      swapped.rejected_finished = pair.chosen_finished;
    }
    return swapped;
  });
  return { pairs: out, flipped };
}
