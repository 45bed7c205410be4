import { WorldRng, type World } from './world';

/** SPA §4's split of the prompt budget: a 3.3% seed set, then 13.3%, 33.3% and 50% for rounds 1, 2 and 3. */
export const SEED_FRACTION = 0.033;
export const ROUND_FRACTIONS: readonly number[] = [0.133, 0.333, 0.5];

export interface WorldDataOptions {
  seed: number;
  /** Prompts of the preference budget (seed set + all rounds, the paper's 100%). */
  promptBudget: number;
  /** Rounds whose prompt sets are drawn (1..3). */
  rounds: number;
  /** Supervised examples for the base (SFT) model. */
  sftExamples: number;
  /** Held-out evaluation prompts. */
  evalPrompts: number;
  /** The seed set's fraction of the budget (default SEED_FRACTION). */
  seedFraction?: number;
}

export interface PromptLine {
  id: string;
  prompt: string;
}

export interface WorldData {
  /** {prompt, response} lines for the SFT job. */
  sft: Array<{ prompt: string; response: string }>;
  /** Prompts of the seed set (labelled on-policy by the gold annotator later: two π_init samples per prompt). */
  seedPrompts: PromptLine[];
  /** Prompt sets of rounds 1..rounds. */
  roundPrompts: PromptLine[][];
  /** Held-out prompts: template/slot combinations never drawn for training. */
  evalPrompts: PromptLine[];
}

/** Sizes of the seed set and of each round's prompt set for a budget (each at least 1). */
export function promptSetSizes(promptBudget: number, rounds: number, seedFraction = SEED_FRACTION): { seed: number; rounds: number[] } {
  const size = (fraction: number) => Math.max(1, Math.round(promptBudget * fraction));
  return { seed: size(seedFraction), rounds: ROUND_FRACTIONS.slice(0, rounds).map(size) };
}

/**
 * Draws a world's data deterministically from `seed`: the same options give the same lines. Training prompt sets
 * (seed and rounds) are pairwise disjoint; evaluation prompts are distinct and come from held-out cells only.
 */
export function buildWorldData(world: World, options: WorldDataOptions): WorldData {
  const { seed, promptBudget, rounds, sftExamples, evalPrompts } = options;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > ROUND_FRACTIONS.length) {
    throw new Error(`rounds must be an integer in 1..${ROUND_FRACTIONS.length}, got ${rounds}`);
  }
  for (const [name, value] of Object.entries({ promptBudget, sftExamples, evalPrompts })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  }
  const sizes = promptSetSizes(promptBudget, rounds, options.seedFraction);

  const sftRng = new WorldRng(seed, `${world.name}/sft`);
  const sft = Array.from({ length: sftExamples }, () => {
    const prompt = world.samplePrompt(sftRng, 'train');
    return { prompt, response: world.sampleResponse(sftRng, prompt) };
  });

  const trainRng = new WorldRng(seed, `${world.name}/prompts`);
  const used = new Set<string>();
  const distinct = (rng: WorldRng, split: 'train' | 'eval', count: number, prefix: string): PromptLine[] => {
    const lines: PromptLine[] = [];
    for (let attempts = 0; lines.length < count; attempts++) {
      if (attempts > 1000 * count + 10_000) throw new Error(`the ${world.name} world has too few distinct ${split} prompts for ${count} more`);
      const prompt = world.samplePrompt(rng, split);
      if (used.has(prompt)) continue;
      used.add(prompt);
      lines.push({ id: `${prefix}-${lines.length}`, prompt });
    }
    return lines;
  };
  const seedPrompts = distinct(trainRng, 'train', sizes.seed, 'seed');
  const roundPrompts = sizes.rounds.map((count, i) => distinct(trainRng, 'train', count, `r${i + 1}`));
  const evalPromptLines = distinct(new WorldRng(seed, `${world.name}/eval`), 'eval', evalPrompts, 'eval');
  return { sft, seedPrompts, roundPrompts, evalPrompts: evalPromptLines };
}
