import { SeededRandom } from './seeds';

/** Resamples of the win-rate bootstrap; 2000 keeps the percentile endpoints stable to about ±0.005. */
export const BOOTSTRAP_RESAMPLES = 2000;
/** Two-sided level of every interval the coordinator reports. */
export const CONFIDENCE_LEVEL = 0.95;

/** One comparison of a π_t sample against π_init's fixed sample for the same prompt: 1 win, 0.5 tie, 0 loss. */
export type Outcome = 1 | 0.5 | 0;

export interface WinRate {
  winRate: number;
  ciLow: number;
  ciHigh: number;
  wins: number;
  ties: number;
  losses: number;
  comparisons: number;
}

/**
 * Win rate of π_t against π_init with ties counting half, and its 95% interval by a percentile bootstrap over
 * prompts (the cluster bootstrap): a prompt's samples share the prompt and the one π_init sample they are compared
 * with, so they are not independent, and resampling whole prompts keeps that correlation in the interval (a Wilson
 * interval over all comparisons would treat them as independent and come out too narrow). Seeded, so a re-executed
 * evaluation reports the same interval.
 *
 * @param byPrompt outcomes grouped by prompt (each prompt's samples)
 */
export function winRate(byPrompt: readonly (readonly Outcome[])[], seed: number, resamples = BOOTSTRAP_RESAMPLES): WinRate {
  const all = byPrompt.flat();
  const wins = all.filter((o) => o === 1).length;
  const ties = all.filter((o) => o === 0.5).length;
  const comparisons = all.length;
  if (comparisons === 0) return { winRate: NaN, ciLow: NaN, ciHigh: NaN, wins, ties, losses: 0, comparisons };
  const rate = (wins + 0.5 * ties) / comparisons;
  const groups = byPrompt.filter((g) => g.length > 0);
  const sums = groups.map((g) => g.reduce<number>((s, o) => s + o, 0));
  const sizes = groups.map((g) => g.length);
  const rng = new SeededRandom(seed);
  const estimates = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let sum = 0;
    let size = 0;
    for (let i = 0; i < groups.length; i++) {
      const pick = rng.int(groups.length);
      sum += sums[pick];
      size += sizes[pick];
    }
    estimates[b] = sum / size;
  }
  estimates.sort();
  const alpha = (1 - CONFIDENCE_LEVEL) / 2;
  return {
    winRate: rate,
    ciLow: estimates[Math.floor(alpha * resamples)],
    ciHigh: estimates[Math.min(resamples - 1, Math.ceil((1 - alpha) * resamples) - 1)],
    wins,
    ties,
    losses: comparisons - wins - ties,
    comparisons,
  };
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((s, v) => s + v, 0) / values.length;
}

/**
 * Per-step trainer metrics as round metrics: TRL names get a `train/` prefix (train/loss, train/rewards/margins),
 * the trainer's own families keep theirs (spa/…, dro/…), as coordinator.proto's RoundMetrics lists them.
 */
export function trainerMetricName(name: string): string {
  return name.startsWith('spa/') || name.startsWith('dro/') || name.startsWith('train/') ? name : `train/${name}`;
}
