import { InvalidArgumentError } from '@alignment/errors';
import { requireFinite } from '@alignment/service-kit';

/**
 * Pairs with a response the generator cut at max_new_tokens (finish reason "length"; judge.proto
 * JudgePairsRequest.unfinished_pairs, docs/algorithm.md §7). Such a response never ended: every scorer that appends
 * EOS scores it without one (pair-scorers.ts), and this policy, named after TRL's `missing_eos_penalty`, decides
 * what becomes of its pair:
 *   - drop (the default, for every method): the pair is dropped and counted (dropped_unfinished);
 *   - penalize: `penalty` (in the method's score units) is subtracted from each unfinished response's score before
 *     the pair is chosen (and before best_worst ranks the responses);
 *   - keep: the pair is judged as any other.
 */
export type UnfinishedPolicyName = 'drop' | 'penalize' | 'keep';

/** judge.proto JudgePairsRequest.unfinished_penalty when unset. */
export const DEFAULT_UNFINISHED_PENALTY = 1.0;

export interface UnfinishedPolicy {
  name: UnfinishedPolicyName;
  /** Subtracted from an unfinished response's score (penalize only; 0 otherwise). */
  penalty: number;
}

/** The job's policy, checked: `unfinished_penalty` must be finite and >= 0. */
export function resolveUnfinishedPolicy(name: UnfinishedPolicyName | undefined, penalty: number | undefined): UnfinishedPolicy {
  const policy = name ?? 'drop';
  const value = penalty ?? DEFAULT_UNFINISHED_PENALTY;
  requireFinite('unfinished_penalty', value);
  if (value < 0) throw new InvalidArgumentError('unfinished_penalty', `must be >= 0, got ${value}`);
  return { name: policy, penalty: policy === 'penalize' ? value : 0 };
}

/**
 * Whether each of `responses` (taken from the record's responses) finished, from the record's per-response flags:
 * a text's flag is that of its first occurrence in the record (best_worst keeps first occurrences). A record without
 * finish reasons finished everywhere.
 */
export function finishedFlags(record: { responses: readonly string[]; finished?: readonly boolean[] }, responses: readonly string[]): boolean[] {
  return responses.map((text) => record.finished?.[record.responses.indexOf(text)] ?? true);
}

/** The scores the pair is chosen on: unfinished responses' scores less the penalty (penalize), else unchanged. */
export function penalizedScores(policy: UnfinishedPolicy, scores: readonly number[], finished: readonly boolean[]): number[] {
  return policy.name === 'penalize' ? scores.map((s, i) => (finished[i] ? s : s - policy.penalty)) : [...scores];
}

/** Whether the policy drops a pair with these finished flags. */
export function dropsPair(policy: UnfinishedPolicy, finished: readonly boolean[]): boolean {
  return policy.name === 'drop' && finished.some((f) => !f);
}
