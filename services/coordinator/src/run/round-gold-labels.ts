import type { JsonObject } from './data';
import { SeededRandom } from './seeds';

/**
 * RunSpec.round_gold_labels (docs/algorithm.md §7): which of a round's prompts the gold annotator labels, how often
 * the round judge agrees with it there, and the pairs LEARN then trains on. Pairs are JUDGE's lines, each with
 * `prompt_index` (the prompt's index in the round's responses), `chosen` and `rejected`.
 */

/** The indices (ascending) of the min(k, count) prompts the annotator labels: a permutation seeded by `seed`. */
export function goldPromptIndices(count: number, k: number, seed: number): number[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`pairs_per_round must be a positive integer, got ${k}`);
  return new SeededRandom(seed)
    .permutation(count)
    .slice(0, Math.min(k, count))
    .sort((a, b) => a - b);
}

export interface Agreement {
  /** Prompts both judges labelled with the same two responses. */
  compared: number;
  /** Of those, the prompts where both chose the same response. */
  agreed: number;
}

const key = (value: unknown) => JSON.stringify(value);

/** The round judge's agreement with the annotator, over the prompts where both labelled the same two responses. */
export function selfGoldAgreement(selfPairs: readonly JsonObject[], goldPairs: readonly JsonObject[]): Agreement {
  const self = new Map(selfPairs.map((p) => [p.prompt_index, p]));
  let compared = 0;
  let agreed = 0;
  for (const gold of goldPairs) {
    const mine = self.get(gold.prompt_index);
    if (!mine) continue;
    const same =
      (key(mine.chosen) === key(gold.chosen) && key(mine.rejected) === key(gold.rejected)) ||
      (key(mine.chosen) === key(gold.rejected) && key(mine.rejected) === key(gold.chosen));
    if (!same) continue;
    compared += 1;
    if (key(mine.chosen) === key(gold.chosen)) agreed += 1;
  }
  return { compared, agreed };
}

/**
 * Whether the round keeps its self-labels: always without a threshold (unless discarded), else only when some pair
 * was compared and the agreement reaches the threshold (no evidence keeps none).
 */
export function keepsSelfLabels(agreement: Agreement, minAgreement: number | undefined, discard: boolean): boolean {
  if (discard) return false;
  if (minAgreement === undefined) return true;
  return agreement.compared > 0 && agreement.agreed / agreement.compared >= minAgreement;
}

/**
 * The pairs LEARN trains on, in prompt order: the gold pairs (marked `"source": "gold"`), and with `keepSelf` the round
 * judge's pairs on every prompt the annotator was not asked about (on the asked ones the annotator's word replaces
 * the judge's, a tie or a dropped pair included).
 */
export function mergeGoldLabels(selfPairs: readonly JsonObject[], goldPairs: readonly JsonObject[], asked: readonly number[], keepSelf: boolean): JsonObject[] {
  const askedSet = new Set(asked);
  const kept = keepSelf ? selfPairs.filter((p) => !askedSet.has(p.prompt_index as number)) : [];
  const gold: JsonObject[] = goldPairs.map((p) => ({ ...p, source: 'gold' }));
  return [...kept, ...gold].sort((a, b) => (a.prompt_index as number) - (b.prompt_index as number));
}
