import { JudgeMethod, type RunSpec } from '@alignment/contracts';
import type { ConfigurationPlan } from '../configurations';
import { isServiceAddress } from './evaluation';
import { check, configName } from './fields';

/**
 * The judge of rounds 1..T (RunSpec fields 8-10, 29): the configuration's built-in judge, whose method decides which
 * options it needs, or the user's judge at judge_address, which gets JUDGE_METHOD_RULE requests naming judge_rule.
 * Seed-only configurations run no rounds: judge_address is refused for them, the other fields are ignored.
 */
export function checkRoundJudge(spec: RunSpec, plan: ConfigurationPlan, rounds: number): void {
  const name = configName(spec.configuration);
  const address = spec.judgeAddress;
  if (address !== '') {
    check(plan.selfAnnotation, 'judge_address', `is only used by configurations with self-annotation rounds, not ${name}`);
    check(
      isServiceAddress(address),
      'judge_address',
      `must be host:port (e.g. 127.0.0.1:50071) of a service implementing alignment.v1.Judge, got '${address}'`,
    );
    check(
      spec.judgeMethod === JudgeMethod.JUDGE_METHOD_UNSPECIFIED || spec.judgeMethod === JudgeMethod.JUDGE_METHOD_RULE,
      'judge_method',
      `the judge at judge_address gets JUDGE_METHOD_RULE requests: leave judge_method unset or JUDGE_METHOD_RULE, got ${JudgeMethod[spec.judgeMethod] ?? spec.judgeMethod}`,
    );
    check(spec.judgeRule.trim() !== '', 'judge_rule', 'is required with judge_address: the rule name that judge answers to (RuleJudge.rule, e.g. "python/score")');
    check(spec.judgeModel === undefined, 'judge_model', 'is not used with judge_address (that judge scores with its own model)');
    check(!spec.frozenJudge, 'frozen_judge', "freezes the SPA judge's policy, but the rounds are labelled by the judge at judge_address");
    return;
  }
  if (rounds === 0) return;
  const method = spec.judgeMethod === JudgeMethod.JUDGE_METHOD_UNSPECIFIED ? plan.judge! : spec.judgeMethod;
  check(method === plan.judge, 'judge_method', `${name} labels its rounds with ${JudgeMethod[plan.judge!]}, got ${JudgeMethod[spec.judgeMethod] ?? spec.judgeMethod}`);
  if (method === JudgeMethod.JUDGE_METHOD_REWARD_MODEL || method === JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE) {
    check(spec.judgeModel !== undefined, 'judge_model', `is required by ${JudgeMethod[method]}`);
  } else {
    check(spec.judgeModel === undefined, 'judge_model', `is not used by ${JudgeMethod[method]} (it judges with π_{t-1} and π_init)`);
  }
  check(
    spec.judgeRule === '',
    'judge_rule',
    `is only used with judge_address (the stack's rules judge only evaluations: evaluation.rule), not by ${JudgeMethod[method]}`,
  );
}

/** The method of the rounds' JudgePairs requests: RULE for the judge at judge_address, else the configuration's. */
export function roundJudgeMethodOf(spec: RunSpec, plan: ConfigurationPlan): JudgeMethod | undefined {
  return spec.judgeAddress !== '' ? JudgeMethod.JUDGE_METHOD_RULE : plan.judge;
}
