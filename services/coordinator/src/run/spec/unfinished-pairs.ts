import { UnfinishedPairs, type RunSpec } from '@alignment/contracts';
import type { ConfigurationPlan } from '../configurations';
import { check, configName } from './fields';

/** RunSpec.unfinished_penalty when unset (judge.proto JudgePairsRequest.unfinished_penalty's default too). */
export const DEFAULT_UNFINISHED_PENALTY = 1.0;

/** The run's policy for pairs with a response cut at max_new_tokens: unset = UNFINISHED_PAIRS_DROP. */
export function unfinishedPairsPolicy(spec: RunSpec): UnfinishedPairs {
  const policy = spec.unfinishedPairs ?? UnfinishedPairs.UNFINISHED_PAIRS_UNSPECIFIED;
  return policy === UnfinishedPairs.UNFINISHED_PAIRS_UNSPECIFIED ? UnfinishedPairs.UNFINISHED_PAIRS_DROP : policy;
}

/**
 * RunSpec fields 24-25 (docs/algorithm.md §7, TRL's missing_eos_penalty): the policy is one of the enum's values,
 * both fields only for configurations with self-annotation rounds, and unfinished_penalty only with
 * UNFINISHED_PAIRS_PENALIZE. The policy's defined values and the penalty's >= 0 are buf.validate annotations.
 */
export function checkUnfinishedPairs(spec: RunSpec, plan: ConfigurationPlan): void {
  const name = configName(spec.configuration);
  const onlyWithRounds = (p: string) => check(plan.selfAnnotation, p, `is only used by configurations with self-annotation rounds, not ${name}`);
  if (spec.unfinishedPairs !== undefined) onlyWithRounds('unfinished_pairs');
  if (spec.unfinishedPenalty !== undefined) {
    check(
      unfinishedPairsPolicy(spec) === UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE,
      'unfinished_penalty',
      `is only used with unfinished_pairs UNFINISHED_PAIRS_PENALIZE, got ${UnfinishedPairs[unfinishedPairsPolicy(spec)]}`,
    );
  }
}
