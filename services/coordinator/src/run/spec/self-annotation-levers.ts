import { JudgeMethod, Pairing, type RunSpec } from '@alignment/contracts';
import type { ConfigurationPlan } from '../configurations';
import { isServiceAddress } from './evaluation';
import { check, configName } from './fields';
import { roundJudgeMethodOf } from './round-judge';

/**
 * The self-annotation levers of RunSpec (fields 19-23 and 32-36; docs/algorithm.md §7): each only for configurations with
 * self-annotation rounds (their ranges are RunSpec's buf.validate annotations: checkRanges). Unset fields keep SPA
 * Algorithm 1's rounds.
 */
export function checkSelfAnnotationLevers(spec: RunSpec, plan: ConfigurationPlan): void {
  const name = configName(spec.configuration);
  const onlyWithRounds = (p: string) => check(plan.selfAnnotation, p, `is only used by configurations with self-annotation rounds, not ${name}`);
  if (spec.judgeTieMargin !== undefined) {
    onlyWithRounds('judge_tie_margin');
  }
  if (spec.frozenJudge) {
    onlyWithRounds('frozen_judge');
    check(
      plan.judge === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
      'frozen_judge',
      `freezes the SPA judge's policy, but ${name} labels its rounds with ${JudgeMethod[plan.judge!]}`,
    );
  }
  if (spec.judgeLearningRate !== undefined) {
    onlyWithRounds('judge_learning_rate');
    check(spec.frozenJudge === true, 'judge_learning_rate', 'trains the frozen judge apart from the policy: it requires frozen_judge: true');
    check(!spec.engine, 'judge_learning_rate', 'is not supported with engine yet (the engine serves each round\'s policy, not a separately trained judge)');
  }
  if (spec.anchoredReference) {
    onlyWithRounds('anchored_reference');
  }
  if (spec.sampleFromInit) {
    onlyWithRounds('sample_from_init');
  }
  if (spec.roundLabelNoiseRate) {
    onlyWithRounds('round_label_noise_rate');
  }
  if (spec.roundGoldLabels) checkRoundGoldLabels(spec, onlyWithRounds);
  if (spec.seedReplayFraction !== undefined) {
    onlyWithRounds('seed_replay_fraction');
  }
  if (spec.confidenceKeepFraction !== undefined) {
    onlyWithRounds('confidence_keep_fraction');
  }
  if (spec.pairing === Pairing.PAIRING_BEST_WORST) {
    onlyWithRounds('pairing');
    const method = roundJudgeMethodOf(spec, plan);
    check(
      method !== JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE,
      'pairing',
      `PAIRING_BEST_WORST ranks responses by their own scores, which ${JudgeMethod[method!]} does not give (it compares two)`,
    );
    const n = spec.generation?.n ?? 0;
    check(n >= 3, 'pairing', `PAIRING_BEST_WORST needs generation.n >= 3 responses per prompt (with 2 it is the first two), got ${n || 'the default 2'}`);
  }
}

/** RunSpec.round_gold_labels: a gold annotator's address and rule, and a consistent choice about the self-labels. */
function checkRoundGoldLabels(spec: RunSpec, onlyWithRounds: (field: string) => void): void {
  const gold = spec.roundGoldLabels!;
  onlyWithRounds('round_gold_labels');
  check(spec.judgeAddress === '', 'round_gold_labels', 'is not used with judge_address: the judge there already labels every pair of every round');
  const address = gold.annotatorAddress.trim();
  check(address !== '', 'round_gold_labels.annotator_address', 'is required: host:port of the gold annotator (a service implementing alignment.v1.Judge)');
  check(isServiceAddress(address), 'round_gold_labels.annotator_address', `must be host:port (e.g. 127.0.0.1:50070) of a service implementing alignment.v1.Judge, got '${gold.annotatorAddress}'`);
  check(gold.rule.trim() !== '', 'round_gold_labels.rule', 'is required: the rule name the annotator answers to (RuleJudge.rule)');
  check(gold.pairsPerRound >= 1, 'round_gold_labels.pairs_per_round', `must be at least 1, got ${gold.pairsPerRound}`);
  check(
    !(gold.discardSelfLabels && gold.minSelfAgreement !== undefined),
    'round_gold_labels.min_self_agreement',
    'decides when the self-labels are kept, but discard_self_labels never keeps them: set one of the two',
  );
}
