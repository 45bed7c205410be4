import { promptKey, type DataPrompt } from '@alignment/artifacts';
import { RoundPromptOverlap, type EvaluationConfig, type RunSpec } from '@alignment/contracts';
import { roundFractions, splitPrompts } from '../prompt-split';
import { deduplicateRounds, overlapPolicy } from '../round-prompts';
import { check, fail } from './fields';
import { pinFile, promptsOf } from './pinning';

/** Pinned sums of fractions may exceed 1 by this much (0.133 + 0.333 + 0.5 + 0.033 and friends). */
const FRACTION_SLACK = 1e-9;

/**
 * The per-round prompt sets, given (round_prompts) or split from one file (prompt_split), pinned in `spec`, and
 * checked against spec.round_prompt_overlap: REJECT wants them pairwise disjoint and disjoint from the seed pairs'
 * prompts; DEDUPLICATE (the default) wants every round left with a prompt once repeats are dropped; ALLOW takes them
 * as they are. Prompts are compared by promptKey. `requireTemplate` refuses conversational prompts a model without a
 * chat template cannot encode. Returns every round prompt's key, with its round index.
 */
export async function pinRoundPrompts(
  spec: RunSpec,
  rounds: number,
  seedPrompts: Set<string>,
  requireTemplate: (prompts: Array<{ prompt: DataPrompt; where: string }>, p: string) => void,
): Promise<Map<string, string>> {
  const roundPrompts: Array<{ prompts: string[]; field: string }> = [];
  const prompts = spec.prompts;
  if (rounds > 0) check(prompts !== undefined, 'prompts', 'one of round_prompts or prompt_split is required when rounds > 0');
  if (prompts?.$case === 'roundPrompts') {
    const sets = prompts.value.rounds;
    check(sets.length === spec.rounds, 'round_prompts.rounds', `has ${sets.length} prompt sets for ${spec.rounds} rounds`);
    for (let i = 0; i < sets.length; i++) {
      const p = `round_prompts.rounds[${i}]`;
      const pinned = await pinFile(sets[i], p);
      sets[i] = pinned.pinned;
      const prompts = await promptsOf(pinned.file, p);
      requireTemplate(prompts, p);
      roundPrompts.push({ prompts: prompts.map((x) => promptKey(x.prompt)), field: `${p}.uri` });
    }
  } else if (prompts?.$case === 'promptSplit') {
    const split = prompts.value;
    const fractions = roundFractions(split.roundFractions, spec.rounds);
    check(fractions !== undefined, 'prompt_split.round_fractions', `are required for more than 3 rounds (the paper's split has 3), got ${spec.rounds} rounds`);
    check(
      fractions!.length === spec.rounds,
      'prompt_split.round_fractions',
      `has ${fractions!.length} fractions for ${spec.rounds} rounds`,
    );
    const seedFraction = split.seedFraction ?? 0;
    const total = fractions!.reduce((s, f) => s + f, seedFraction);
    check(total <= 1 + FRACTION_SLACK, 'prompt_split.round_fractions', `sum to ${total.toFixed(6)} with seed_fraction; must be <= 1`);
    const pinned = await pinFile(split.prompts, 'prompt_split.prompts');
    split.prompts = pinned.pinned;
    const read = await promptsOf(pinned.file, 'prompt_split.prompts');
    requireTemplate(read, 'prompt_split.prompts');
    const all = read.map((x) => promptKey(x.prompt));
    splitPrompts(all.length, fractions!, seedFraction).rounds.forEach(([start, end], i) => {
      check(end > start, `prompt_split.round_fractions[${i}]`, `gives round ${i + 1} no prompts out of ${all.length}`);
      roundPrompts.push({ prompts: all.slice(start, end), field: 'prompt_split.prompts.uri' });
    });
  }
  // Its value is one of the enum's (a buf.validate annotation, checkRanges).
  const policy = overlapPolicy(spec);
  if (policy === RoundPromptOverlap.ROUND_PROMPT_OVERLAP_REJECT) rejectOverlaps(roundPrompts, seedPrompts, prompts?.$case === 'promptSplit');
  if (policy === RoundPromptOverlap.ROUND_PROMPT_OVERLAP_DEDUPLICATE) {
    deduplicateRounds(seedPrompts, roundPrompts.map((r) => r.prompts)).forEach(({ kept, dropped }, i) => {
      check(
        kept.length > 0,
        roundPrompts[i].field,
        `round ${i + 1} has no prompt left once the ${dropped} that repeat a seed prompt or an earlier one are dropped ` +
          '(round_prompt_overlap DEDUPLICATE); rounds need fresh prompts',
      );
    });
  }
  const seen = new Map<string, string>();
  roundPrompts.forEach(({ prompts: list }, i) => list.forEach((prompt) => seen.has(prompt) || seen.set(prompt, `${i}`)));
  return seen;
}

function rejectOverlaps(roundPrompts: Array<{ prompts: string[]; field: string }>, seedPrompts: Set<string>, split: boolean): void {
  const seen = new Map<string, string>();
  roundPrompts.forEach(({ prompts: list, field: p }, i) => {
    for (const prompt of list) {
      if (seedPrompts.has(prompt)) {
        fail(p, `round ${i + 1}'s prompts include a prompt of the seed pairs (${JSON.stringify(prompt.slice(0, 80))}); rounds need fresh prompts` +
          (split ? ' (set prompt_split.seed_fraction to skip the seed part of the file)' : '') +
          ' (round_prompt_overlap REJECT; DEDUPLICATE drops repeats instead)');
      }
      const earlier = seen.get(prompt);
      if (earlier !== undefined && earlier !== `${i}`) {
        fail(p, `round ${i + 1} repeats a prompt of round ${Number(earlier) + 1} (${JSON.stringify(prompt.slice(0, 80))}); rounds must be disjoint (round_prompt_overlap REJECT)`);
      }
      seen.set(prompt, `${i}`);
    }
  });
}

/** The held-out prompts, pinned in `evaluation`: never a training prompt (seed pairs or a round's). */
export async function pinEvaluationPrompts(
  evaluation: EvaluationConfig,
  seedPrompts: Set<string>,
  roundPrompts: Map<string, string>,
  requireTemplate: (prompts: Array<{ prompt: DataPrompt; where: string }>, p: string) => void,
): Promise<void> {
  const pinned = await pinFile(evaluation.prompts, 'evaluation.prompts');
  evaluation.prompts = pinned.pinned;
  const read = await promptsOf(pinned.file, 'evaluation.prompts');
  requireTemplate(read, 'evaluation.prompts');
  for (const prompt of read.map((x) => promptKey(x.prompt))) {
    check(
      !seedPrompts.has(prompt) && !roundPrompts.has(prompt),
      'evaluation.prompts.uri',
      `held-out prompt ${JSON.stringify(prompt.slice(0, 80))} is also a training prompt (seed pairs or a round); evaluation prompts are never trained on`,
    );
  }
}
