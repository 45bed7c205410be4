import { JudgeMethod, type EvaluationConfig } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { checkEvaluation, isServiceAddress } from './evaluation';

// evaluation.gold_judge_address (issue 13: any gold annotator): a host:port, only with a RULE evaluator, named on
// error. The whole path (a run evaluated by a Python gold judge) is clients/python/tests/test_gold_judge.py.

const ruleEvaluation = (goldJudgeAddress: string): EvaluationConfig => ({
  prompts: { uri: '/held-out.jsonl', sha256: '', sizeBytes: 0 },
  evaluator: JudgeMethod.JUDGE_METHOD_RULE,
  rule: 'python/score',
  samplesPerPrompt: 2,
  goldJudgeAddress,
});

function errorOf(evaluation: EvaluationConfig): InvalidArgumentError | undefined {
  try {
    checkEvaluation(evaluation, true);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error;
    throw error;
  }
}

describe('evaluation.gold_judge_address', () => {
  it.each(['127.0.0.1:50070', 'localhost:1', 'gold-judge.team.svc.cluster.local:443', '[::1]:65535', 'dns:///judge:50053'])('takes %s', (address) => {
    expect(isServiceAddress(address)).toBe(true);
    expect(errorOf(ruleEvaluation(address))).toBeUndefined();
  });

  it.each(['127.0.0.1', ':50070', 'localhost:0', 'localhost:65536', 'http://localhost:50070', 'a b:1', 'host:port', '-judge:1', ' 127.0.0.1:1'])(
    'refuses %j, naming the field',
    (address) => {
      expect(isServiceAddress(address)).toBe(false);
      const error = errorOf(ruleEvaluation(address));
      expect(error?.field).toBe('spec.evaluation.gold_judge_address');
      expect(error?.message).toContain(`must be host:port`);
      expect(error?.message).toContain(`'${address}'`);
    },
  );

  it('is refused with a reward-model evaluator (the gold judge answers RULE requests)', () => {
    const evaluation: EvaluationConfig = {
      ...ruleEvaluation('127.0.0.1:50070'),
      evaluator: JudgeMethod.JUDGE_METHOD_REWARD_MODEL,
      rule: '',
      rewardModel: { onnx: { uri: '/rm', sha256: '', sizeBytes: 0 } },
    };
    const error = errorOf(evaluation);
    expect(error?.field).toBe('spec.evaluation.gold_judge_address');
    expect(error?.message).toContain('only used with evaluator JUDGE_METHOD_RULE');
  });

  it('still needs the rule it names to the gold judge', () => {
    expect(errorOf({ ...ruleEvaluation('127.0.0.1:50070'), rule: '' })?.field).toBe('spec.evaluation.rule');
  });
});
