import * as path from 'node:path';
import { writeFileAtomic } from '@alignment/artifacts';
import { Stage, type ArtifactRef, type PromptEncoding, type RunSpec } from '@alignment/contracts';
import { readObjects, readPairs, writeJsonl } from '../data';
import { readPinned } from '../evaluate';
import { StageFailedError } from '../executors';
import { preferenceJobSpec } from '../job-spec';
import { learnOutput } from '../model-store';
import { promptEncodingInput } from '../prompt-encoding';
import { flipLabels } from '../label-noise';
import { trainerMetricName } from '../metrics';
import { deriveSeed } from '../seeds';
import { drawReplay, replayCount } from '../self-label-levers';
import { verifyOutput, type StageOutput } from '../stage-manifest';
import { fileOutput, settingInput, specInput, type StageContext, type StageDefinition, type StageInput, type StageResult } from './stage';

type LearnInputs = {
  /** The seed pairs in round 0, the round's judged pairs after. */
  pairs: StageInput<ArtifactRef | undefined>;
  /** The Hugging Face checkpoint of π_init in round 0, of π_{t−1} after. */
  init: StageInput<ArtifactRef | undefined>;
  /** Rounds ≥ 1 with spec.seed_replay_fraction > 0: the fraction, and the seed pairs round 0 trained on. */
  replayFraction?: StageInput<number>;
  seedPairs?: StageInput<ArtifactRef | undefined>;
  /** spec.prompt_encoding, when not raw text. */
  promptEncoding?: StageInput<PromptEncoding>;
  /** Rounds ≥ 1 with spec.anchored_reference: π_init's checkpoint, DPO's reference. */
  reference?: StageInput<ArtifactRef | undefined>;
  /** Round 0 with spec.judge_learning_rate: the rate the frozen judge π_J is trained at, beside π_0. */
  judgeLearningRate?: StageInput<number>;
};

/**
 * LEARN: one trainer job from `init` on `pairs` (job-spec.ts); round 0 first flips the seed labels when the spec
 * asks for label noise, and later rounds first mix replayed seed pairs in when the spec asks for seed replay (and
 * train against π_init with spec.anchored_reference). With
 * spec.judge_learning_rate, round 0 also trains the frozen judge π_J on the same seed pairs (outputs judge_model.*).
 */
export const learnStage: StageDefinition<LearnInputs> = {
  stage: Stage.STAGE_LEARN,

  inputs(spec, round, outputs) {
    if (round === 0) {
      const inputs: LearnInputs = { pairs: specInput(spec.seedPairs), init: specInput(spec.baseModel?.hfCheckpoint), ...promptEncodingInput(spec) };
      if (spec.judgeLearningRate !== undefined) inputs.judgeLearningRate = settingInput(spec.judgeLearningRate);
      return inputs;
    }
    const inputs: LearnInputs = {
      pairs: outputs.input(round, Stage.STAGE_JUDGE, 'pairs'),
      init: outputs.input(round - 1, Stage.STAGE_LEARN, 'model.hf_checkpoint'),
      ...promptEncodingInput(spec),
    };
    if (spec.anchoredReference) inputs.reference = specInput(spec.baseModel?.hfCheckpoint);
    if (spec.seedReplayFraction) {
      inputs.replayFraction = settingInput(spec.seedReplayFraction);
      // The seed pairs as round 0 trained on them: with label noise, its flipped copy.
      inputs.seedPairs = spec.labelNoiseRate > 0 ? outputs.input(0, Stage.STAGE_LEARN, 'seed_pairs') : specInput(spec.seedPairs);
    }
    return inputs;
  },

  async execute(inputs, { runId, nonce, spec, round, dir, seed, attempt, modelStore, executors, call }) {
    const result: StageResult = { outputs: {}, metrics: {} };
    const ctxOf = () => ({ runId, spec, round, dir, seed, attempt, modelStore, executors, call });
    const init = inputs.init.value!;
    let pairs = inputs.pairs.value!;
    if (round === 0) {
      const seedFile = await readPinned(pairs, 'the seed pairs');
      if (spec.labelNoiseRate > 0) {
        // Label noise is part of round 0's LEARN: deterministic from the run seed, so a re-executed stage flips the
        // same pairs and produces the same file.
        const noiseSeed = deriveSeed(spec.seed, 0, 'label-noise');
        const original = (await readPairs(seedFile)).map((p) => p.value);
        const noisy = flipLabels(original, spec.labelNoiseRate, noiseSeed);
        const info = await writeJsonl(path.join(dir, 'seed_pairs.noisy.jsonl'), noisy.pairs);
        const record = await writeFileAtomic(
          path.join(dir, 'label_noise.json'),
          JSON.stringify({ rate: spec.labelNoiseRate, seed: noiseSeed, num_pairs: original.length, flipped: noisy.flipped }) + '\n',
        );
        pairs = { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes };
        result.outputs.seed_pairs = fileOutput(pairs);
        result.outputs.label_noise = fileOutput({ uri: record.uri, sha256: record.sha256, sizeBytes: record.sizeBytes });
        result.metrics['data/flipped_pairs'] = noisy.flipped.length;
        result.metrics['data/seed_pairs'] = original.length;
      }
    }
    if (inputs.replayFraction && inputs.seedPairs) {
      pairs = await mixSeedReplay(result, { pairs, seedPairs: inputs.seedPairs.value!, fraction: inputs.replayFraction.value, round, dir, runSeed: spec.seed });
    }
    // The stage's own files (flipped seed pairs, replay mix); the trainer jobs' outputs are verified by trainModel.
    for (const [name, output] of Object.entries(result.outputs)) {
      const problem = await verifyOutput(output);
      if (problem) throw new StageFailedError(`LEARN of round ${round}: output ${name}: ${problem}`);
    }
    // Deterministic per (run, round, attempt): a coordinator that restarts mid-stage re-attaches to its job.
    const jobId = `${runId}-${nonce}-r${round}-learn-a${attempt}`;
    const trained = await trainModel({ ...ctxOf(), jobId, pairs, init, reference: inputs.reference?.value, job: 'learn' });
    Object.assign(result.outputs, trained.outputs);
    for (const [name, value] of Object.entries(trained.jobMetrics)) result.metrics[trainerMetricName(name)] = value;
    if (inputs.judgeLearningRate) {
      // π_J: DPO on the same seed pairs (flipped, with label noise) from π_init, at its own rate (RunSpec.judge_learning_rate).
      const judgeJobId = `${runId}-${nonce}-r0-judge-a${attempt}`;
      const judge = await trainModel({ ...ctxOf(), jobId: judgeJobId, pairs, init, job: 'judge', learningRate: inputs.judgeLearningRate.value });
      // Named judge_model.* and judge_job.*: stages read π_J with StageOutputs.model(0, 'judge_model').
      for (const [name, output] of Object.entries(judge.outputs)) result.outputs[name.replace(/^model\./, 'judge_model.').replace(/^job\./, 'judge_job.')] = output;
      for (const [name, value] of Object.entries(judge.jobMetrics)) result.metrics[`judge_model/${name}`] = value;
    }
    result.jobId = jobId;
    return result;
  },
};

/** One trainer job of a LEARN stage and the model it wrote: π_t (`job` 'learn'), or round 0's frozen judge π_J ('judge'). */
async function trainModel(args: {
  runId: string;
  spec: RunSpec;
  round: number;
  dir: string;
  seed: number;
  attempt: number;
  modelStore: string | undefined;
  executors: StageContext['executors'];
  call: StageContext['call'];
  jobId: string;
  pairs: ArtifactRef;
  init: ArtifactRef;
  reference?: ArtifactRef;
  job: 'learn' | 'judge';
  learningRate?: number;
}): Promise<{ outputs: Record<string, StageOutput>; jobMetrics: Record<string, number> }> {
  const { runId, round, attempt, dir, jobId } = args;
  const where = { runId, round, attempt, stageDir: dir, job: args.job };
  const output = learnOutput({ store: args.modelStore, ...where });
  const jobSpec = preferenceJobSpec({ spec: args.spec, round, init: args.init, pairs: args.pairs, output, seed: args.seed, reference: args.reference, learningRate: args.learningRate });
  // With a model store, the attempt's directory in the stage directory is where a trainer on this volume trains first.
  const stagingDir = args.modelStore ? learnOutput(where) : undefined;
  const job = await args.executors.learn.train(jobId, jobSpec, { ...args.call, stagingDir });
  const model = job.outputs?.model;
  if (!model?.hfCheckpoint?.sha256 || !model.onnx?.sha256) {
    throw new StageFailedError(`trainer job ${jobId} succeeded without a model (hf_checkpoint and onnx with sha256)`);
  }
  const outputs: Record<string, StageOutput> = {
    'model.hf_checkpoint': { ...model.hfCheckpoint, kind: 'dir' },
    'model.onnx': { ...model.onnx, kind: 'dir' },
  };
  if (job.outputs?.manifest?.uri) outputs['job.manifest'] = fileOutput(job.outputs.manifest);
  if (job.outputs?.metrics?.uri) outputs['job.metrics'] = fileOutput(job.outputs.metrics);
  for (const [name, output] of Object.entries(outputs)) {
    const problem = await verifyOutput(output);
    if (problem) throw new StageFailedError(`trainer job ${jobId}: output ${name}: ${problem}`);
  }
  return { outputs, jobMetrics: job.metrics };
}

/**
 * Seed replay (docs/algorithm.md §7): the round's training pairs are its self-labelled pairs followed by
 * replayCount of the seed pairs (self-label-levers.ts), written as the stage's `training_pairs` output.
 */
async function mixSeedReplay(
  result: StageResult,
  args: { pairs: ArtifactRef; seedPairs: ArtifactRef; fraction: number; round: number; dir: string; runSeed: number },
): Promise<ArtifactRef> {
  const selfLabelled = (await readObjects(await readPinned(args.pairs, `round ${args.round}'s pairs`))).map((l) => l.value);
  const seeds = (await readPairs(await readPinned(args.seedPairs, 'the seed pairs'))).map((p) => p.value);
  const replayed = drawReplay(seeds, replayCount(args.fraction, selfLabelled.length, seeds.length), deriveSeed(args.runSeed, args.round, 'seed-replay'));
  const info = await writeJsonl(path.join(args.dir, 'training_pairs.jsonl'), [...selfLabelled, ...replayed]);
  const mixed = { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes };
  result.outputs.training_pairs = fileOutput(mixed);
  result.metrics['data/replayed_seed_pairs'] = replayed.length;
  return mixed;
}
