import { RoundPromptOverlap, type RunSpec } from '@alignment/contracts';

/** The spec's overlap policy; unset is DEDUPLICATE (proto/alignment/v1/coordinator.proto RoundPromptOverlap). */
export function overlapPolicy(spec: RunSpec): RoundPromptOverlap {
  const policy = spec.roundPromptOverlap ?? RoundPromptOverlap.ROUND_PROMPT_OVERLAP_UNSPECIFIED;
  return policy === RoundPromptOverlap.ROUND_PROMPT_OVERLAP_UNSPECIFIED ? RoundPromptOverlap.ROUND_PROMPT_OVERLAP_DEDUPLICATE : policy;
}

/**
 * Which prompts of each round DEDUPLICATE keeps: the first occurrence of each prompt, in the order seed pairs, round
 * 1 (file order), round 2, …; a prompt seen before (a seed prompt, an earlier round's, or earlier in its own round) is
 * left out. Returns, per round, the indices kept (in file order) and how many were left out.
 */
export function deduplicateRounds(seedPrompts: ReadonlySet<string>, rounds: readonly (readonly string[])[]): Array<{ kept: number[]; dropped: number }> {
  const seen = new Set(seedPrompts);
  return rounds.map((prompts) => {
    const kept: number[] = [];
    prompts.forEach((prompt, i) => {
      if (seen.has(prompt)) return;
      seen.add(prompt);
      kept.push(i);
    });
    return { kept, dropped: prompts.length - kept.length };
  });
}
