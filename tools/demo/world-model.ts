import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@alignment/artifacts';
import { JobState, PromptEncoding, type ArchitectureConfig, type Job, type JobSpec, type ModelRef, type TrainingHyperparams } from '@alignment/contracts';
import { buildWorldData, type World, type WorldData } from '@alignment/toyworld';
import { ROOT, type StackClients } from './stack';

/** Bump when the world inputs' layout or the way they are built changes: every cached base model is rebuilt. */
const BUILD_VERSION = 'toyworld-base/v1';

export interface BaseModelOptions {
  seed: number;
  /** The trainer's kernel level (cpu-level.ts): part of the cache key, since another level trains another model. */
  cpuCapability: string;
  promptBudget: number;
  rounds: number;
  sftExamples: number;
  evalPrompts: number;
  vocabSize: number;
  architecture: Omit<ArchitectureConfig, 'tokenizer'>;
  sft: Partial<TrainingHyperparams>;
}

/** A world's inputs on disk: π_init (checkpoint + ONNX, in the cache) and the prompt sets, all absolute paths. */
export interface WorldInputs {
  dir: string;
  model: ModelRef;
  seedPrompts: string;
  roundPrompts: string[];
  evalPrompts: string;
  /** Whether this call built the model (false: reused from the cache). */
  built: boolean;
  sftSeconds: number;
}

function jsonl(rows: readonly object[]): string {
  return rows.map((r) => JSON.stringify(r) + '\n').join('');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Writes a world's prompt sets into `promptDir` and builds its base model with the trainer's SFT job, or reuses it:
 * the model's directory under `cacheRoot` is keyed by a hash of everything that determines the model (SFT corpus,
 * tokenizer size, architecture, SFT hyper-parameters, build version), so a second run with the same options costs
 * nothing, changing the prompt budget or the evaluation set does not retrain it, and any change to the model's inputs
 * builds a new one. `.complete` is written last; a directory without it (an interrupted build) is rebuilt.
 */
export async function buildOrReuseBaseModel(
  clients: StackClients,
  python: string,
  world: World,
  options: BaseModelOptions,
  cacheRoot: string,
  promptDir: string,
  onProgress: (done: number, total: number, detail: string) => void,
): Promise<WorldInputs> {
  const data: WorldData = buildWorldData(world, options);
  fs.mkdirSync(promptDir, { recursive: true });
  const promptFile = (name: string) => path.join(promptDir, name);
  await writeFileAtomic(promptFile('seed_prompts.jsonl'), jsonl(data.seedPrompts));
  await writeFileAtomic(promptFile('eval.jsonl'), jsonl(data.evalPrompts));
  for (const [i, set] of data.roundPrompts.entries()) await writeFileAtomic(promptFile(`round-${i + 1}.jsonl`), jsonl(set));

  const sftText = jsonl(data.sft);
  const key = sha256(
    JSON.stringify({
      version: BUILD_VERSION,
      world: world.name,
      sft: sha256(sftText),
      vocabSize: options.vocabSize,
      architecture: options.architecture,
      hparams: options.sft,
      cpuCapability: options.cpuCapability,
    }),
  ).slice(0, 16);
  const dir = path.join(cacheRoot, `${world.name}-${key}`);
  const inputs = (built: boolean, sftSeconds: number): WorldInputs => ({
    dir,
    model: { hfCheckpoint: { uri: path.join(dir, 'base/checkpoint'), sha256: '', sizeBytes: 0 }, onnx: { uri: path.join(dir, 'base/onnx'), sha256: '', sizeBytes: 0 } },
    seedPrompts: promptFile('seed_prompts.jsonl'),
    roundPrompts: data.roundPrompts.map((_, i) => promptFile(`round-${i + 1}.jsonl`)),
    evalPrompts: promptFile('eval.jsonl'),
    built,
    sftSeconds,
  });
  if (fs.existsSync(path.join(dir, '.complete'))) return inputs(false, 0);

  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, 'sft.jsonl'), sftText);

  const tokenizer = spawnSync(
    python,
    ['-m', 'alignment_trainer.cli', 'tokenizer', '--corpus', path.join(dir, 'sft.jsonl'), '--output', path.join(dir, 'tokenizer'), '--vocab-size', String(options.vocabSize)],
    { cwd: ROOT, env: { ...process.env, PYTHONPATH: path.join(ROOT, 'services/trainer/src') }, encoding: 'utf8' },
  );
  if (tokenizer.status !== 0) throw new Error(`building the ${world.name} tokenizer failed:\n${tokenizer.stderr.slice(-2000)}`);

  const started = Date.now();
  const spec: JobSpec = {
    kind: {
      $case: 'sft',
      value: {
        init: { $case: 'architecture', value: { ...options.architecture, tokenizer: { uri: path.join(dir, 'tokenizer'), sha256: '', sizeBytes: 0 } } },
        dataset: { uri: path.join(dir, 'sft.jsonl'), sha256: '', sizeBytes: 0 },
        // Every example trained on, as the cached base models and the published figures were built (the cache key
        // does not cover the trainer's 5% default hold-out).
        evalFraction: 0,
        // The world's {"prompt", "response"} examples are learned through the chat template, as the demo's runs then
        // encode their prompts (runs.ts DEMO_PROMPT_ENCODING).
        promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE,
      },
    },
    hparams: fullHparams({ ...options.sft, seed: options.seed }),
    outputUri: path.join(dir, 'base'),
    exportOnnx: true,
  };
  await runTrainerJob(clients, `sft-${world.name}-${key}`, spec, onProgress);
  fs.writeFileSync(path.join(dir, '.complete'), `${BUILD_VERSION}\n`);
  return inputs(true, (Date.now() - started) / 1000);
}

export function fullHparams(h: Partial<TrainingHyperparams>): TrainingHyperparams {
  return {
    learningRate: 0,
    epochs: 1,
    maxSteps: 0,
    batchSize: 0,
    gradientAccumulationSteps: 0,
    maxLength: 0,
    lrScheduler: '',
    weightDecay: 0,
    maxGradNorm: 0,
    seed: 0,
    gradientCheckpointing: false,
    bf16: false,
    checkpointEverySteps: 0,
    dtype: '',
    fullLogits: false,
    cacheReferenceLogps: false,
    offloadActivations: false,
    ...h,
  };
}

/** StartJob (idempotent by job id) and WatchJob until the job ends; rejects with the trainer's error. */
async function runTrainerJob(
  clients: StackClients,
  jobId: string,
  spec: JobSpec,
  onProgress: (done: number, total: number, detail: string) => void,
): Promise<Job> {
  await new Promise<void>((resolve, reject) =>
    clients.trainer.startJob({ spec, jobId }, (error) => (error ? reject(error) : resolve())),
  );
  const job = await new Promise<Job | undefined>((resolve, reject) => {
    let last: Job | undefined;
    const stream = clients.trainer.watchJob({ jobId });
    stream.on('data', (message: { event?: { $case: string; value: unknown } }) => {
      if (message.event?.$case === 'step') {
        const step = message.event.value as { step: number; totalSteps: number; loss: number };
        onProgress(step.step, step.totalSteps, `loss ${step.loss.toFixed(3)}`);
      } else if (message.event?.$case === 'job') {
        last = message.event.value as Job;
      }
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(last));
  });
  if (!job || job.state !== JobState.JOB_STATE_SUCCEEDED) {
    throw new Error(`trainer job ${jobId} ended ${job ? JobState[job.state] : 'without a final state'}: ${job?.error ?? ''}`);
  }
  return job;
}
