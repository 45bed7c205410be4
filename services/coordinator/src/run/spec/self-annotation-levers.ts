import { JudgeMethod, Pairing, type RunSpec } from '@alignment/contracts';
import type { ConfigurationPlan } from '../configurations';
import { check, configName, finite } from './fields';

/**
 * The self-annotation levers of RunSpec (fields 19-23; docs/algorithm.md §7): each only for configurations with
 * self-annotation rounds, and each in its range. Unset fields keep SPA Algorithm 1's rounds.
 */
export function checkSelfAnnotationLevers(spec: RunSpec, plan: ConfigurationPlan): void {
  const name = configName(spec.configuration);
  const onlyWithRounds = (p: string) => check(plan.selfAnnotation, p, `is only used by configurations with self-annotation rounds, not ${name}`);
  if (spec.judgeTieMargin !== undefined) {
    onlyWithRounds('judge_tie_margin');
    finite(spec.judgeTieMargin, 'judge_tie_margin');
    check(spec.judgeTieMargin >= 0, 'judge_tie_margin', `must be >= 0, got ${spec.judgeTieMargin}`);
  }
  if (spec.frozenJudge) {
    onlyWithRounds('frozen_judge');
    check(
      plan.judge === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
      'frozen_judge',
      `freezes the SPA judge's policy, but ${name} labels its rounds with ${JudgeMethod[plan.judge!]}`,
    );
  }
  if (spec.seedReplayFraction !== undefined) {
    onlyWithRounds('seed_replay_fraction');
    finite(spec.seedReplayFraction, 'seed_replay_fraction');
    check(spec.seedReplayFraction >= 0 && spec.seedReplayFraction <= 1, 'seed_replay_fraction', `must be in [0, 1], got ${spec.seedReplayFraction}`);
  }
  if (spec.confidenceKeepFraction !== undefined) {
    onlyWithRounds('confidence_keep_fraction');
    finite(spec.confidenceKeepFraction, 'confidence_keep_fraction');
    check(
      spec.confidenceKeepFraction > 0 && spec.confidenceKeepFraction <= 1,
      'confidence_keep_fraction',
      `must be in (0, 1], got ${spec.confidenceKeepFraction}`,
    );
  }
  if (spec.pairing !== undefined) {
    check(
      spec.pairing === Pairing.PAIRING_UNSPECIFIED || spec.pairing === Pairing.PAIRING_BEST_WORST,
      'pairing',
      `must be PAIRING_UNSPECIFIED (the first two responses) or PAIRING_BEST_WORST, got ${spec.pairing}`,
    );
  }
  if (spec.pairing === Pairing.PAIRING_BEST_WORST) {
    onlyWithRounds('pairing');
    check(
      plan.judge !== JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE,
      'pairing',
      `PAIRING_BEST_WORST ranks responses by their own scores, which ${JudgeMethod[plan.judge!]} does not give (it compares two)`,
    );
    const n = spec.generation?.n ?? 0;
    check(n >= 3, 'pairing', `PAIRING_BEST_WORST needs generation.n >= 3 responses per prompt (with 2 it is the first two), got ${n || 'the default 2'}`);
  }
}
