import { JudgeMethod, type EvaluationConfig } from '@alignment/contracts';
import { check } from './fields';
import { checkGeneration } from './generation';

/**
 * A gRPC target as a channel takes it: host:port, the host a DNS name, an IPv4 address or a bracketed IPv6 one,
 * optionally after `dns:` / `dns:///` (the resolver grpc-js uses for a bare host:port too).
 */
const ADDRESS = /^(?:dns:(?:\/\/\/)?)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})$/;

/** Whether `address` is host:port with a port in [1, 65535]. */
export function isServiceAddress(address: string): boolean {
  const match = ADDRESS.exec(address);
  return match !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65535;
}

/**
 * EvaluationConfig: who decides wins (a rule, possibly at a gold judge of the user's, or a reward model), and with what.
 * samples_per_prompt's range is a buf.validate annotation (checkRanges).
 */
export function checkEvaluation(evaluation: EvaluationConfig, roundsPlanned: boolean): void {
  check(
    evaluation.evaluator === JudgeMethod.JUDGE_METHOD_RULE || evaluation.evaluator === JudgeMethod.JUDGE_METHOD_REWARD_MODEL,
    'evaluation.evaluator',
    `must be JUDGE_METHOD_RULE or JUDGE_METHOD_REWARD_MODEL, got ${JudgeMethod[evaluation.evaluator] ?? evaluation.evaluator}`,
  );
  if (evaluation.evaluator === JudgeMethod.JUDGE_METHOD_RULE) {
    check(evaluation.rule.trim() !== '', 'evaluation.rule', 'is required by JUDGE_METHOD_RULE (a registered verifier, e.g. "toyworld/arithmetic")');
    check(evaluation.rewardModel === undefined, 'evaluation.reward_model', 'is not used by JUDGE_METHOD_RULE');
  } else {
    check(evaluation.rewardModel !== undefined, 'evaluation.reward_model', 'is required by JUDGE_METHOD_REWARD_MODEL');
    check(evaluation.rule === '', 'evaluation.rule', 'is not used by JUDGE_METHOD_REWARD_MODEL');
  }
  const gold = evaluation.goldJudgeAddress;
  if (gold !== '') {
    check(
      evaluation.evaluator === JudgeMethod.JUDGE_METHOD_RULE,
      'evaluation.gold_judge_address',
      'is only used with evaluator JUDGE_METHOD_RULE (the gold judge gets RULE requests naming evaluation.rule)',
    );
    check(isServiceAddress(gold), 'evaluation.gold_judge_address', `must be host:port (e.g. 127.0.0.1:50070) of a service implementing alignment.v1.Judge, got '${gold}'`);
  }
  checkGeneration(evaluation.generation, 'evaluation.generation', { kind: 'evaluation', roundsPlanned });
}
