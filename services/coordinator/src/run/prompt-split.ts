import { PAPER_ROUND_FRACTIONS } from './configurations';

/**
 * Splitting one prompt file into the per-round prompt sets (RunSpec.prompt_split), in file order, as the paper's
 * code does after its one fixed shuffle: the first seed_fraction of the prompts is skipped (the seed pairs were
 * drawn from it; they are given separately), then round t takes the next round_fractions[t-1]. Boundaries are
 * round(cumulative fraction · N). Shuffle the file beforehand if its order means something.
 */
export interface SplitPlan {
  /** [start, end) line indices (0-based, over the file's prompts) for rounds 1..T. */
  rounds: Array<[number, number]>;
}

/** The fractions a split uses: the spec's, else the paper's for the first `rounds` rounds (undefined past 3). */
export function roundFractions(specFractions: readonly number[], rounds: number): number[] | undefined {
  if (specFractions.length > 0) return [...specFractions];
  if (rounds > PAPER_ROUND_FRACTIONS.length) return undefined;
  return PAPER_ROUND_FRACTIONS.slice(0, rounds);
}

export function splitPrompts(numPrompts: number, fractions: readonly number[], seedFraction: number): SplitPlan {
  const boundary = (cumulative: number) => Math.min(numPrompts, Math.round(cumulative * numPrompts));
  let cumulative = seedFraction;
  let start = boundary(cumulative);
  const rounds: Array<[number, number]> = [];
  for (const fraction of fractions) {
    cumulative += fraction;
    const end = boundary(cumulative);
    rounds.push([start, end]);
    start = end;
  }
  return { rounds };
}
