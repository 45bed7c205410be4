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
  return flipSubset(pairs, rate, seed, 'label noise rate', ['chosen_score', 'rejected_score']);
}

/**
 * RunSpec.round_label_noise_rate: exactly round(rate · N) of a round's labelled pairs, chosen by a seeded permutation,
 * get their responses swapped (chosen ↔ rejected, with their finish flags), while the judge's scores and margin stay
 * where they were: a judge wrong on those pairs, and as confident as on the others.
 */
export function flipRoundLabels(pairs: readonly JsonObject[], rate: number, seed: number): LabelNoiseResult {
  return flipSubset(pairs, rate, seed, 'round label noise rate', ['chosen_finished', 'rejected_finished']);
}

/** Swaps chosen ↔ rejected, and the two fields of `alsoSwapped` when the pair has either, in round(rate · N) pairs. */
function flipSubset(pairs: readonly JsonObject[], rate: number, seed: number, what: string, alsoSwapped: [string, string]): LabelNoiseResult {
  if (!(rate >= 0 && rate < 0.5)) throw new Error(`${what} must be in [0, 0.5), got ${rate}`);
  const flipped = new SeededRandom(seed).permutation(pairs.length).slice(0, flipCount(pairs.length, rate)).sort((a, b) => a - b);
  const flip = new Set(flipped);
  const [a, b] = alsoSwapped;
  const out = pairs.map((pair, i) => {
    if (!flip.has(i)) return pair;
    const swapped: JsonObject = { ...pair, chosen: pair.rejected, rejected: pair.chosen };
    if (a in pair || b in pair) {
      swapped[a] = pair[b];
      swapped[b] = pair[a];
    }
    return swapped;
  });
  return { pairs: out, flipped };
}
