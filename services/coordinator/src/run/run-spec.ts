import { Configuration, RunSpec } from '@alignment/contracts';
import { promptKey } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { configurationPlan, CONFIGURATIONS, effectiveRounds, type ConfigurationPlan } from './configurations';
import { DataFormatError, readPairs } from './data';
import { checkEngine } from './spec/engine';
import { check, checkRanges, configName, fail } from './spec/fields';
import { checkEvaluation } from './spec/evaluation';
import { checkGeneration } from './spec/generation';
import { checkHyperparams } from './spec/hyperparams';
import { checkLoss } from './spec/loss';
import { pinFile, pinModel } from './spec/pinning';
import { templateRequirement } from './spec/prompt-encoding';
import { pinEvaluationPrompts, pinRoundPrompts } from './spec/prompt-sets';
import { checkRoundJudge } from './spec/round-judge';
import { checkSelfAnnotationLevers } from './spec/self-annotation-levers';
import { checkUnfinishedPairs } from './spec/unfinished-pairs';

// RunSpec validation, up front: everything a run will need is checked before it starts, and every error names the
// field as `spec.<path in snake_case>` with the reason (InvalidArgumentError -> INVALID_ARGUMENT). One module per
// part of the spec under spec/. The single-field ranges (rounds at most 20, learning_rate in (0, 1), ...) are the
// proto's buf.validate annotations, checked first (spec/fields.ts checkRanges).

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
  checkRanges(spec);
  check(
    spec.configuration !== Configuration.CONFIGURATION_UNSPECIFIED && CONFIGURATIONS.has(spec.configuration),
    'configuration',
    `is required: one of ${[...CONFIGURATIONS.keys()].map(configName).join(', ')}`,
  );
  const plan = configurationPlan(spec.configuration);
  const rounds = effectiveRounds(spec.configuration, spec.rounds);

  checkLoss(spec.loss, plan, spec.configuration, rounds);
  checkHyperparams(spec.seedTraining, 'seed_training');
  if (rounds > 0 || spec.roundTraining) checkHyperparams(spec.roundTraining, 'round_training');
  checkGeneration(spec.generation, 'generation', { kind: 'rounds', roundsPlanned: rounds > 0 });

  // Judge of the rounds: the configuration's (its method decides which options it needs), or one at judge_address.
  checkRoundJudge(spec, plan, rounds);
  checkSelfAnnotationLevers(spec, plan);
  checkUnfinishedPairs(spec, plan);
  checkEngine(spec, rounds);

  // Evaluation (optional): who decides wins, and with what.
  const evaluation = spec.evaluation;
  if (evaluation) checkEvaluation(evaluation, rounds > 0);

  // Files and directories, last: they are the slow checks.
  const baseModel = await pinModel(spec.baseModel, 'base_model', { hf: true });
  spec.baseModel = baseModel;
  if (rounds > 0 && spec.judgeModel) spec.judgeModel = await pinModel(spec.judgeModel, 'judge_model', { hf: false });
  if (evaluation?.rewardModel) evaluation.rewardModel = await pinModel(evaluation.rewardModel, 'evaluation.reward_model', { hf: false });

  const requireTemplate = templateRequirement(spec, baseModel);

  const seed = await pinFile(spec.seedPairs, 'seed_pairs');
  spec.seedPairs = seed.pinned;
  let seedPrompts: Set<string>;
  try {
    const pairs = await readPairs(seed.file);
    requireTemplate(pairs, 'seed_pairs');
    seedPrompts = new Set(pairs.map((p) => promptKey(p.prompt)));
  } catch (error) {
    if (error instanceof DataFormatError) fail('seed_pairs.uri', error.message);
    throw error;
  }

  const seen = await pinRoundPrompts(spec, rounds, seedPrompts, requireTemplate);
  if (evaluation) await pinEvaluationPrompts(evaluation, seedPrompts, seen, requireTemplate);
  return { spec, plan, rounds };
}

/** Checks a client-chosen run id (it names a directory and is part of trainer job ids). */
export function checkRunId(runId: string): void {
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new InvalidArgumentError('run_id', `must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit, got '${runId}'`);
  }
}
