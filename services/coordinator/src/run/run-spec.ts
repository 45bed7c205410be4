import { Configuration, JudgeMethod, RunSpec } from '@alignment/contracts';
import { promptKey } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { configurationPlan, CONFIGURATIONS, effectiveRounds, type ConfigurationPlan } from './configurations';
import { DataFormatError, readPairs } from './data';
import { check, configName, fail, finite } from './spec/fields';
import { checkEvaluation } from './spec/evaluation';
import { checkGeneration } from './spec/generation';
import { checkHyperparams } from './spec/hyperparams';
import { checkLoss } from './spec/loss';
import { pinFile, pinModel } from './spec/pinning';
import { pinEvaluationPrompts, pinRoundPrompts } from './spec/prompt-sets';
import { checkSelfAnnotationLevers } from './spec/self-annotation-levers';
import { checkUnfinishedPairs } from './spec/unfinished-pairs';

// RunSpec validation, up front: everything a run will need is checked before it starts, and every error names the
// field as `spec.<path in snake_case>` with the reason (InvalidArgumentError -> INVALID_ARGUMENT). One module per
// part of the spec under spec/.

/** Self-annotation rounds after round 0; the paper runs 3. */
export const MAX_ROUNDS = 20;
/** Shards of one generator or judge call. */
export const MAX_SHARDS = 64;
export const MAX_NAME_LENGTH = 200;
/** Run ids become directory names and trainer job ids; the trainer allows [A-Za-z0-9._-]{1,128}. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The checked spec, with every input file's sha256 pinned and every URI absolute. */
export interface ValidatedSpec {
  spec: RunSpec;
  plan: ConfigurationPlan;
  /** Rounds after round 0 that will run (0 for seed-only configurations). */
  rounds: number;
}

/**
 * Validates a RunSpec completely (files are opened and parsed) and returns it pinned: every input URI made an
 * absolute file:// URI, every input file's sha256 filled in, so a resumed run can refuse inputs that changed.
 * Throws InvalidArgumentError naming the first bad field.
 */
export async function validateSpec(input: RunSpec): Promise<ValidatedSpec> {
  const spec = RunSpec.fromPartial(input);
  check(spec.name.length <= MAX_NAME_LENGTH, 'name', `must be at most ${MAX_NAME_LENGTH} characters`);
  check(
    spec.configuration !== Configuration.CONFIGURATION_UNSPECIFIED && CONFIGURATIONS.has(spec.configuration),
    'configuration',
    `is required: one of ${[...CONFIGURATIONS.keys()].map(configName).join(', ')}`,
  );
  const plan = configurationPlan(spec.configuration);
  check(spec.rounds <= MAX_ROUNDS, 'rounds', `must be in [0, ${MAX_ROUNDS}], got ${spec.rounds}`);
  const rounds = effectiveRounds(spec.configuration, spec.rounds);

  const sharding = spec.sharding;
  if (sharding) {
    check(sharding.generatorShards <= MAX_SHARDS, 'sharding.generator_shards', `must be in [0, ${MAX_SHARDS}], got ${sharding.generatorShards}`);
    check(sharding.judgeShards <= MAX_SHARDS, 'sharding.judge_shards', `must be in [0, ${MAX_SHARDS}], got ${sharding.judgeShards}`);
  }
  finite(spec.labelNoiseRate, 'label_noise_rate');
  check(spec.labelNoiseRate >= 0 && spec.labelNoiseRate < 0.5, 'label_noise_rate', `must be in [0, 0.5), got ${spec.labelNoiseRate}`);

  checkLoss(spec.loss, plan, spec.configuration, rounds);
  checkHyperparams(spec.seedTraining, 'seed_training');
  if (rounds > 0 || spec.roundTraining) checkHyperparams(spec.roundTraining, 'round_training');
  checkGeneration(spec.generation, 'generation', { kind: 'rounds', roundsPlanned: rounds > 0 });

  // Judge of the rounds: the configuration decides the method; the method decides which options it needs.
  if (rounds > 0) {
    const method = spec.judgeMethod === JudgeMethod.JUDGE_METHOD_UNSPECIFIED ? plan.judge! : spec.judgeMethod;
    check(
      method === plan.judge,
      'judge_method',
      `${configName(spec.configuration)} labels its rounds with ${JudgeMethod[plan.judge!]}, got ${JudgeMethod[spec.judgeMethod] ?? spec.judgeMethod}`,
    );
    if (method === JudgeMethod.JUDGE_METHOD_REWARD_MODEL || method === JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE) {
      check(spec.judgeModel !== undefined, 'judge_model', `is required by ${JudgeMethod[method]}`);
    } else {
      check(spec.judgeModel === undefined, 'judge_model', `is not used by ${JudgeMethod[method]} (it judges with π_{t-1} and π_init)`);
    }
    check(spec.judgeRule === '', 'judge_rule', `is not used by ${JudgeMethod[method]} (rules judge only evaluations: evaluation.rule)`);
  }
  checkSelfAnnotationLevers(spec, plan);
  checkUnfinishedPairs(spec, plan);

  // Evaluation (optional): who decides wins, and with what.
  const evaluation = spec.evaluation;
  if (evaluation) checkEvaluation(evaluation, rounds > 0);

  // Files and directories, last: they are the slow checks.
  const baseModel = await pinModel(spec.baseModel, 'base_model', { hf: true });
  spec.baseModel = baseModel;
  if (rounds > 0 && spec.judgeModel) spec.judgeModel = await pinModel(spec.judgeModel, 'judge_model', { hf: false });
  if (evaluation?.rewardModel) evaluation.rewardModel = await pinModel(evaluation.rewardModel, 'evaluation.reward_model', { hf: false });

  const seed = await pinFile(spec.seedPairs, 'seed_pairs');
  spec.seedPairs = seed.pinned;
  let seedPrompts: Set<string>;
  try {
    seedPrompts = new Set((await readPairs(seed.file)).map((p) => promptKey(p.prompt)));
  } catch (error) {
    if (error instanceof DataFormatError) fail('seed_pairs.uri', error.message);
    throw error;
  }

  const seen = await pinRoundPrompts(spec, rounds, seedPrompts);
  if (evaluation) await pinEvaluationPrompts(evaluation, seedPrompts, seen);
  return { spec, plan, rounds };
}

/** Checks a client-chosen run id (it names a directory and is part of trainer job ids). */
export function checkRunId(runId: string): void {
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new InvalidArgumentError('run_id', `must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit, got '${runId}'`);
  }
}
