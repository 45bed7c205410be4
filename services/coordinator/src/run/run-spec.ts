import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArtifactError, fileUri, sha256File, toLocalPath, verifyArtifact } from '@alignment/artifacts';
import {
  Configuration,
  JudgeMethod,
  RunSpec,
  type ArtifactRef,
  type GenerationParams,
  type LossParams,
  type ModelRef,
  type TrainingHyperparams,
} from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { configurationPlan, CONFIGURATIONS, effectiveRounds, type ConfigurationPlan } from './configurations';
import { DataFormatError, readPairs, readPrompts } from './data';
import { roundFractions, splitPrompts } from './prompt-split';

// RunSpec validation, up front: everything a run will need is checked before it starts, and every error names the
// field as `spec.<path in snake_case>` with the reason (InvalidArgumentError -> INVALID_ARGUMENT).

/** Self-annotation rounds after round 0; the paper runs 3. */
export const MAX_ROUNDS = 20;
/** Shards of one generator or judge call. */
export const MAX_SHARDS = 64;
/** Responses per prompt in a round (the judge labels the first two). */
export const MAX_RESPONSES_PER_PROMPT = 16;
export const MAX_SAMPLES_PER_PROMPT = 64;
export const MAX_NEW_TOKENS = 32_768;
export const MAX_TEMPERATURE = 10;
export const MAX_NAME_LENGTH = 200;
/** Run ids become directory names and trainer job ids; the trainer allows [A-Za-z0-9._-]{1,128}. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Pinned sums of fractions may exceed 1 by this much (0.133 + 0.333 + 0.5 + 0.033 and friends). */
const FRACTION_SLACK = 1e-9;

const LR_SCHEDULERS = ['', 'cosine', 'linear', 'constant'];

const field = (p: string) => `spec.${p}`;

function fail(p: string, reason: string): never {
  throw new InvalidArgumentError(field(p), reason);
}

function check(condition: boolean, p: string, reason: string): void {
  if (!condition) fail(p, reason);
}

function finite(value: number, p: string): number {
  check(Number.isFinite(value), p, `must be a finite number, got ${value}`);
  return value;
}

function configName(configuration: Configuration): string {
  return Configuration[configuration] ?? String(configuration);
}

/** The checked spec, with every input file's sha256 pinned and every URI absolute. */
export interface ValidatedSpec {
  spec: RunSpec;
  plan: ConfigurationPlan;
  /** Rounds after round 0 that will run (0 for seed-only configurations). */
  rounds: number;
}

// ------------------------------------------------------------------------------------------------------ artifacts

function localPath(ref: ArtifactRef | undefined, p: string): string {
  if (!ref || ref.uri.trim() === '') fail(`${p}.uri`, 'is required');
  try {
    return toLocalPath(ref.uri);
  } catch (error) {
    fail(`${p}.uri`, (error as Error).message);
  }
}

/** A file input: exists, and its sha256 is pinned (checked against the given one, if any). */
async function pinFile(ref: ArtifactRef | undefined, p: string): Promise<{ file: string; pinned: ArtifactRef }> {
  const file = localPath(ref, p);
  const stat = await fs.promises.stat(file).catch(() => undefined);
  check(stat?.isFile() === true, `${p}.uri`, `no file at ${file}`);
  const sha256 = await sha256File(file);
  if (ref!.sha256 !== '') check(ref!.sha256.toLowerCase() === sha256, `${p}.sha256`, `${file} has sha256 ${sha256}, not ${ref!.sha256}`);
  return { file, pinned: { uri: fileUri(file), sha256, sizeBytes: stat!.size } };
}

/** A directory input: exists, holds `required`, and matches its manifest when a sha256 is given. */
async function pinDirectory(ref: ArtifactRef | undefined, p: string, required: string, what: string): Promise<ArtifactRef> {
  const dir = localPath(ref, p);
  const stat = await fs.promises.stat(dir).catch(() => undefined);
  check(stat?.isDirectory() === true, `${p}.uri`, `no directory at ${dir} (expected ${what})`);
  check(fs.existsSync(path.join(dir, required)), `${p}.uri`, `${dir} has no ${required} (expected ${what})`);
  if (ref!.sha256 !== '') {
    try {
      await verifyArtifact(dir, ref!.sha256);
    } catch (error) {
      fail(`${p}.sha256`, error instanceof ArtifactError ? error.message : String(error));
    }
  }
  return { uri: fileUri(dir), sha256: ref!.sha256.toLowerCase(), sizeBytes: ref!.sizeBytes };
}

async function pinModel(model: ModelRef | undefined, p: string, needs: { hf: boolean }): Promise<ModelRef> {
  check(model !== undefined, p, 'is required');
  const onnx = await pinDirectory(model!.onnx, `${p}.onnx`, 'model.onnx', 'an ONNX export with model.onnx');
  if (!needs.hf && !model!.hfCheckpoint?.uri) return { onnx };
  const hfCheckpoint = await pinDirectory(model!.hfCheckpoint, `${p}.hf_checkpoint`, 'config.json', 'a Hugging Face checkpoint with config.json');
  return { hfCheckpoint, onnx };
}

async function promptsOf(file: string, p: string): Promise<string[]> {
  try {
    return (await readPrompts(file)).map((r) => r.prompt);
  } catch (error) {
    if (error instanceof DataFormatError) fail(`${p}.uri`, error.message);
    throw error;
  }
}

// ------------------------------------------------------------------------------------------------------- sections

/**
 * Sampling parameters: `rounds` for spec.generation (n responses per round prompt; greedy is refused when rounds
 * run, since both responses would be identical), `evaluation` for evaluation.generation (n comes from
 * samples_per_prompt).
 */
function checkGeneration(params: GenerationParams | undefined, p: string, opts: { kind: 'rounds' | 'evaluation'; roundsPlanned: boolean }): void {
  if (!params) return;
  if (opts.kind === 'rounds') {
    check(
      params.n === 0 || (params.n >= 2 && params.n <= MAX_RESPONSES_PER_PROMPT),
      `${p}.n`,
      `must be 0 (default 2) or in [2, ${MAX_RESPONSES_PER_PROMPT}]: the judge labels a pair of responses per prompt, got ${params.n}`,
    );
    check(
      !(params.greedy && opts.roundsPlanned),
      `${p}.greedy`,
      'greedy decoding makes both responses of a prompt identical, so the judge would drop every pair',
    );
  } else {
    check(params.n === 0, `${p}.n`, `must be 0: evaluation.samples_per_prompt sets the samples per prompt, got ${params.n}`);
  }
  if (params.temperature !== undefined) {
    finite(params.temperature, `${p}.temperature`);
    check(params.temperature >= 0 && params.temperature <= MAX_TEMPERATURE, `${p}.temperature`, `must be in [0, ${MAX_TEMPERATURE}], got ${params.temperature}`);
  }
  if (params.topP !== undefined) {
    finite(params.topP, `${p}.top_p`);
    check(params.topP > 0 && params.topP <= 1, `${p}.top_p`, `must be in (0, 1], got ${params.topP}`);
  }
  check(params.maxNewTokens <= MAX_NEW_TOKENS, `${p}.max_new_tokens`, `must be 0 (default 300) or in [1, ${MAX_NEW_TOKENS}], got ${params.maxNewTokens}`);
  params.stop.forEach((s, i) => check(s !== '', `${p}.stop[${i}]`, 'must not be empty'));
  check(params.seed === 0, `${p}.seed`, 'must be 0: sampling seeds are derived per round and stage from spec.seed');
}

function checkHyperparams(h: TrainingHyperparams | undefined, p: string): void {
  check(h !== undefined, p, 'is required (at least learning_rate and batch_size)');
  finite(h!.learningRate, `${p}.learning_rate`);
  check(h!.learningRate > 0 && h!.learningRate < 1, `${p}.learning_rate`, `must be in (0, 1), got ${h!.learningRate}`);
  finite(h!.epochs, `${p}.epochs`);
  check(h!.epochs >= 0, `${p}.epochs`, `must be >= 0 (0 = 1 epoch), got ${h!.epochs}`);
  check(h!.batchSize >= 1, `${p}.batch_size`, `must be >= 1, got ${h!.batchSize}`);
  const accumulation = h!.gradientAccumulationSteps || 1;
  check(
    h!.batchSize % accumulation === 0,
    `${p}.gradient_accumulation_steps`,
    `must divide batch_size (${h!.batchSize} % ${accumulation} != 0)`,
  );
  check(h!.maxLength === 0 || h!.maxLength >= 2, `${p}.max_length`, `must be 0 (trainer default) or >= 2, got ${h!.maxLength}`);
  if (h!.warmupRatio !== undefined) {
    finite(h!.warmupRatio, `${p}.warmup_ratio`);
    check(h!.warmupRatio >= 0 && h!.warmupRatio < 1, `${p}.warmup_ratio`, `must be in [0, 1), got ${h!.warmupRatio}`);
  }
  check(LR_SCHEDULERS.includes(h!.lrScheduler), `${p}.lr_scheduler`, `must be one of cosine, linear, constant, got '${h!.lrScheduler}'`);
  finite(h!.weightDecay, `${p}.weight_decay`);
  check(h!.weightDecay >= 0, `${p}.weight_decay`, `must be >= 0, got ${h!.weightDecay}`);
  finite(h!.maxGradNorm, `${p}.max_grad_norm`);
  check(h!.maxGradNorm >= 0, `${p}.max_grad_norm`, `must be >= 0, got ${h!.maxGradNorm}`);
  check(h!.seed === 0, `${p}.seed`, 'must be 0: training seeds are derived per round from spec.seed');
}

function checkLoss(loss: LossParams | undefined, plan: ConfigurationPlan, configuration: Configuration, rounds: number): void {
  if (!loss) {
    check(!plan.wdro, 'loss.wdro', `is required for ${configName(configuration)} (delta and epsilon or rho)`);
    return;
  }
  const name = configName(configuration);
  if (loss.beta !== undefined) {
    finite(loss.beta, 'loss.beta');
    check(loss.beta > 0, 'loss.beta', `must be > 0, got ${loss.beta}`);
  }
  const usesSpa = plan.dnd !== 'none';
  if (loss.spa) {
    check(usesSpa, 'loss.spa', `is only used by the configurations with self-refinement (spa, spa-no-dnd, wdro-sr), not ${name}`);
    const s = loss.spa;
    if (s.alpha !== undefined) {
      finite(s.alpha, 'loss.spa.alpha');
      check(s.alpha >= 0 && s.alpha <= 1, 'loss.spa.alpha', `must be in [0, 1], got ${s.alpha}`);
    }
    if (s.kPercentile !== undefined) {
      finite(s.kPercentile, 'loss.spa.k_percentile');
      check(s.kPercentile > 0 && s.kPercentile < 100, 'loss.spa.k_percentile', `must be in (0, 100), got ${s.kPercentile}`);
    }
    if (s.warmupFraction !== undefined) {
      finite(s.warmupFraction, 'loss.spa.warmup_fraction');
      check(s.warmupFraction >= 0 && s.warmupFraction < 1, 'loss.spa.warmup_fraction', `must be in [0, 1), got ${s.warmupFraction}`);
    }
    check(s.window <= 100_000, 'loss.spa.window', `must be 0 (default 50) or at most 100000, got ${s.window}`);
    check(s.dndLambda === 0, 'loss.spa.dnd_lambda', 'must be 0: λ is set per round by loss.dnd_lambda_schedule');
  }
  if (loss.dndLambdaSchedule.length > 0) {
    check(
      plan.dnd === 'schedule',
      'loss.dnd_lambda_schedule',
      `is only used by the configurations with de-coupled noise detection (spa, wdro-sr), not ${name}` +
        (plan.dnd === 'off' ? ' (it runs with λ = 0)' : ''),
    );
    loss.dndLambdaSchedule.forEach((lambda, i) => {
      finite(lambda, `loss.dnd_lambda_schedule[${i}]`);
      check(lambda >= 0, `loss.dnd_lambda_schedule[${i}]`, `must be >= 0, got ${lambda}`);
    });
    check(
      loss.dndLambdaSchedule.length <= rounds,
      'loss.dnd_lambda_schedule',
      `has ${loss.dndLambdaSchedule.length} values for ${rounds} rounds`,
    );
  }
  if (plan.wdro) {
    check(loss.wdro !== undefined, 'loss.wdro', `is required for ${name} (delta and epsilon or rho)`);
    const w = loss.wdro!;
    finite(w.delta, 'loss.wdro.delta');
    check(w.delta > 0 && w.delta < 0.5, 'loss.wdro.delta', `must be in (0, 0.5), got ${w.delta} (δ = 0 makes the worst case infinite)`);
    check(w.radius !== undefined, 'loss.wdro.radius', 'one of epsilon or rho is required');
    if (w.radius!.$case === 'epsilon') {
      finite(w.radius!.value, 'loss.wdro.epsilon');
      check(w.radius!.value >= 0, 'loss.wdro.epsilon', `must be >= 0, got ${w.radius!.value}`);
    } else {
      finite(w.radius!.value, 'loss.wdro.rho');
      check(w.radius!.value >= 0 && w.radius!.value < 1, 'loss.wdro.rho', `must be in [0, 1), got ${w.radius!.value}`);
    }
  } else {
    check(loss.wdro === undefined, 'loss.wdro', `is only used by wdro and wdro-sr, not ${name}`);
  }
  if (loss.labelSmoothing !== undefined) {
    check(plan.labelSmoothing, 'loss.label_smoothing', `is only used by cdpo and rdpo, not ${name}`);
    finite(loss.labelSmoothing, 'loss.label_smoothing');
    check(loss.labelSmoothing >= 0 && loss.labelSmoothing < 0.5, 'loss.label_smoothing', `must be in [0, 0.5), got ${loss.labelSmoothing}`);
  }
  if (loss.drdpoBetaPrime !== undefined) {
    check(plan.drdpoBetaPrime, 'loss.drdpo_beta_prime', `is only used by drdpo, not ${name}`);
    finite(loss.drdpoBetaPrime, 'loss.drdpo_beta_prime');
    check(loss.drdpoBetaPrime > 0, 'loss.drdpo_beta_prime', `must be > 0, got ${loss.drdpoBetaPrime}`);
  }
}

// ------------------------------------------------------------------------------------------------------- the spec

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

  // Evaluation (optional): who decides wins, and with what.
  const evaluation = spec.evaluation;
  if (evaluation) {
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
    check(
      evaluation.samplesPerPrompt <= MAX_SAMPLES_PER_PROMPT,
      'evaluation.samples_per_prompt',
      `must be 0 (default 4) or in [1, ${MAX_SAMPLES_PER_PROMPT}], got ${evaluation.samplesPerPrompt}`,
    );
    checkGeneration(evaluation.generation, 'evaluation.generation', { kind: 'evaluation', roundsPlanned: rounds > 0 });
  }

  // Files and directories, last: they are the slow checks.
  const baseModel = await pinModel(spec.baseModel, 'base_model', { hf: true });
  spec.baseModel = baseModel;
  if (rounds > 0 && spec.judgeModel) spec.judgeModel = await pinModel(spec.judgeModel, 'judge_model', { hf: false });
  if (evaluation?.rewardModel) evaluation.rewardModel = await pinModel(evaluation.rewardModel, 'evaluation.reward_model', { hf: false });

  const seed = await pinFile(spec.seedPairs, 'seed_pairs');
  spec.seedPairs = seed.pinned;
  let seedPrompts: Set<string>;
  try {
    seedPrompts = new Set((await readPairs(seed.file)).map((p) => p.prompt));
  } catch (error) {
    if (error instanceof DataFormatError) fail('seed_pairs.uri', error.message);
    throw error;
  }

  // Per-round prompt sets: given, or split from one file; pairwise disjoint and disjoint from the seed pairs.
  const roundPrompts: Array<{ prompts: string[]; field: string }> = [];
  const prompts = spec.prompts;
  if (rounds > 0) check(prompts !== undefined, 'prompts', 'one of round_prompts or prompt_split is required when rounds > 0');
  if (prompts?.$case === 'roundPrompts') {
    const sets = prompts.value.rounds;
    check(sets.length === spec.rounds, 'round_prompts.rounds', `has ${sets.length} prompt sets for ${spec.rounds} rounds`);
    for (let i = 0; i < sets.length; i++) {
      const p = `round_prompts.rounds[${i}]`;
      const pinned = await pinFile(sets[i], p);
      sets[i] = pinned.pinned;
      roundPrompts.push({ prompts: await promptsOf(pinned.file, p), field: `${p}.uri` });
    }
  } else if (prompts?.$case === 'promptSplit') {
    const split = prompts.value;
    split.roundFractions.forEach((f, i) => {
      finite(f, `prompt_split.round_fractions[${i}]`);
      check(f > 0 && f <= 1, `prompt_split.round_fractions[${i}]`, `must be in (0, 1], got ${f}`);
    });
    const fractions = roundFractions(split.roundFractions, spec.rounds);
    check(fractions !== undefined, 'prompt_split.round_fractions', `are required for more than 3 rounds (the paper's split has 3), got ${spec.rounds} rounds`);
    check(
      fractions!.length === spec.rounds,
      'prompt_split.round_fractions',
      `has ${fractions!.length} fractions for ${spec.rounds} rounds`,
    );
    const seedFraction = split.seedFraction ?? 0;
    finite(seedFraction, 'prompt_split.seed_fraction');
    check(seedFraction >= 0 && seedFraction < 1, 'prompt_split.seed_fraction', `must be in [0, 1), got ${seedFraction}`);
    const total = fractions!.reduce((s, f) => s + f, seedFraction);
    check(total <= 1 + FRACTION_SLACK, 'prompt_split.round_fractions', `sum to ${total.toFixed(6)} with seed_fraction; must be <= 1`);
    const pinned = await pinFile(split.prompts, 'prompt_split.prompts');
    split.prompts = pinned.pinned;
    const all = await promptsOf(pinned.file, 'prompt_split.prompts');
    splitPrompts(all.length, fractions!, seedFraction).rounds.forEach(([start, end], i) => {
      check(end > start, `prompt_split.round_fractions[${i}]`, `gives round ${i + 1} no prompts out of ${all.length}`);
      roundPrompts.push({ prompts: all.slice(start, end), field: 'prompt_split.prompts.uri' });
    });
  }
  const seen = new Map<string, string>();
  roundPrompts.forEach(({ prompts: list, field: p }, i) => {
    for (const prompt of list) {
      if (seedPrompts.has(prompt)) {
        fail(p, `round ${i + 1}'s prompts include a prompt of the seed pairs (${JSON.stringify(prompt.slice(0, 80))}); rounds need fresh prompts` +
          (prompts?.$case === 'promptSplit' ? ' (set prompt_split.seed_fraction to skip the seed part of the file)' : ''));
      }
      const earlier = seen.get(prompt);
      if (earlier !== undefined && earlier !== `${i}`) {
        fail(p, `round ${i + 1} repeats a prompt of round ${Number(earlier) + 1} (${JSON.stringify(prompt.slice(0, 80))}); rounds must be disjoint`);
      }
      seen.set(prompt, `${i}`);
    }
  });

  if (evaluation) {
    const pinned = await pinFile(evaluation.prompts, 'evaluation.prompts');
    evaluation.prompts = pinned.pinned;
    const held = await promptsOf(pinned.file, 'evaluation.prompts');
    for (const prompt of held) {
      check(
        !seedPrompts.has(prompt) && !seen.has(prompt),
        'evaluation.prompts.uri',
        `held-out prompt ${JSON.stringify(prompt.slice(0, 80))} is also a training prompt (seed pairs or a round); evaluation prompts are never trained on`,
      );
    }
  }
  return { spec, plan, rounds };
}

/** Checks a client-chosen run id (it names a directory and is part of trainer job ids). */
export function checkRunId(runId: string): void {
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new InvalidArgumentError('run_id', `must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit, got '${runId}'`);
  }
}
