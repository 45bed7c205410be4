import { JudgeMethod, type RunSpec } from '@alignment/contracts';
import type { JsonObject } from './data';
import { SeededRandom } from './seeds';

// The self-annotation levers that shape a round's training pairs (coordinator.proto RunSpec fields 19-23;
// docs/algorithm.md §7): the units of the judge's margins, the confidence filter and seed replay. Pure functions of
// their arguments, so a re-executed stage writes the same files.

/** DPO β when spec.loss.beta is unset: the judge's default for the SPA tie test and the trainer's (judge.proto). */
export const DEFAULT_BETA = 0.1;

/**
 * The factor that turns a pair's margin (s_chosen − s_rejected, as the judge writes it) into the units the judge's
 * tie test, spec.judge_tie_margin, judge/mean_margin and the confidence filter use: β for the SPA judge, whose
 * scores are log-ratios logπ_{t−1} − logπ_init (so β·margin is the implicit-reward margin), 1 for other methods.
 */
export function marginScale(method: JudgeMethod, spec: RunSpec): number {
  return method === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT ? spec.loss?.beta ?? DEFAULT_BETA : 1;
}

/** spec.confidence_keep_fraction: 1 (keep every pair) when unset. */
export function confidenceKeepFraction(spec: RunSpec): number {
  return spec.confidenceKeepFraction ?? 1;
}

/**
 * The confidence filter: of P judged pairs, the ceil(fraction · P) with the largest margins (on equal margins the
 * earlier in prompt order), returned in prompt order. The margin's scale is the same for every pair of a round, so
 * ranking by |margin| ranks by |β·margin|.
 */
export function keepMostConfident(pairs: readonly JsonObject[], fraction: number): { kept: JsonObject[]; dropped: number } {
  const keep = Math.ceil(fraction * pairs.length);
  const margin = (i: number) => Math.abs(Number(pairs[i].margin));
  const order = pairs.map((_, i) => i).sort((a, b) => margin(b) - margin(a) || a - b);
  const kept = order.slice(0, keep).sort((a, b) => a - b).map((i) => pairs[i]);
  return { kept, dropped: pairs.length - kept.length };
}

/** Seed pairs replayed beside P self-labelled pairs out of S seed pairs: min(round(fraction · P), S). */
export function replayCount(fraction: number, selfLabelled: number, seedPairs: number): number {
  return Math.min(Math.round(fraction * selfLabelled), seedPairs);
}

/**
 * The `count` seed pairs a round replays: the first `count` of a seeded permutation of the seed pairs, in seed-file
 * order, each as {prompt, chosen, rejected, "source": "seed"} (the trainer reads prompt, chosen and rejected).
 */
export function drawReplay(seedPairs: readonly JsonObject[], count: number, seed: number): JsonObject[] {
  const drawn = new SeededRandom(seed).permutation(seedPairs.length).slice(0, count).sort((a, b) => a - b);
  return drawn.map((i) => ({ prompt: seedPairs[i].prompt, chosen: seedPairs[i].chosen, rejected: seedPairs[i].rejected, source: 'seed' }));
}
