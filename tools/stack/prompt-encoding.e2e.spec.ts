/**
 * End to end, TRL's prompt semantics (RunSpec.prompt_encoding) through the real services, each its own process on
 * loopback: a multi-turn conversational prompt set (system, user, assistant, user turns) is sampled by the generator,
 * labelled by the judge's SPA implicit reward, and trained on by a DPO job, the conversation kept turn for turn; and
 * a model whose tokenizer has no chat template goes the same way with raw-text string prompts (the default), while
 * PROMPT_ENCODING_CHAT_TEMPLATE is refused with INVALID_ARGUMENT naming prompt_encoding.
 *
 * Cost (2 cores): the tiny models come from the test cache (tools/testing/tiny-models.ts); ~10 s for the services to
 * listen, a few seconds per generate, judge and train.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  GeneratorClient,
  JobState,
  JudgeClient,
  JudgeMethod,
  PreferenceLoss,
  PromptEncoding,
  TrainerClient,
  UnfinishedPairs,
  type ArtifactRef,
  type GenerateResult,
  type Job,
  type JudgePairsResult,
  type TrainingHyperparams,
} from '@alignment/contracts';
import { createClient } from '@alignment/service-kit';
import { freePort, isListening, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { tinyModels, venvPython, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../testing/tiny-models';
import { ROOT } from './harness';

jest.setTimeout(180_000);

const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const HPARAMS: TrainingHyperparams = {
  learningRate: 1e-4, epochs: 1, maxSteps: 2, batchSize: 4, gradientAccumulationSteps: 1, maxLength: 128, lrScheduler: 'constant',
  weightDecay: 0, maxGradNorm: 0, seed: 1, gradientCheckpointing: false, bf16: false, checkpointEverySteps: 0, dtype: '',
  fullLogits: false, cacheReferenceLogps: false, offloadActivations: false,
};

let models: TinyModels;
let dataDir: string;
const processes: SpawnedProcess[] = [];
let generator: GeneratorClient;
let judge: JudgeClient;
let trainer: TrainerClient;

async function serve(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const port = await freePort();
  const service = spawnProcess(command, args, { PORT: String(port), DATA_DIR: path.join(dataDir, name), LOG_LEVEL: 'warn', ...env }, ROOT);
  processes.push(service);
  await waitFor(() => isListening(port), 120_000, `the ${name} to listen on ${port}\n${service.output()}`);
  return `127.0.0.1:${port}`;
}

function streamResult<T>(stream: NodeJS.EventEmitter): Promise<T> {
  return new Promise((resolve, reject) => {
    let result: T | undefined;
    stream.on('data', (message: { event?: { $case: string; value: unknown } }) => {
      if (message.event?.$case === 'result') result = message.event.value as T;
    });
    stream.on('error', reject);
    stream.on('end', () => (result === undefined ? reject(new Error('the stream ended without a result')) : resolve(result)));
  });
}

const lines = (uri: string) => fs.readFileSync(new URL(uri), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const ref = (uri: string): ArtifactRef => ({ uri, sha256: '', sizeBytes: 0 });

/** A copy of a model directory without its chat template (chat_template.jinja and tokenizer_config.json's). */
function withoutTemplate(dir: string, name: string): string {
  const copy = path.join(dataDir, name);
  fs.cpSync(dir, copy, { recursive: true });
  fs.rmSync(path.join(copy, 'chat_template.jinja'), { force: true });
  const configPath = path.join(copy, 'tokenizer_config.json');
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  delete config.chat_template;
  fs.writeFileSync(configPath, JSON.stringify(config));
  return copy;
}

/** Generate (n = 2) → JudgePairs (SPA, KEEP) → one DPO job on the pairs; returns the pairs and the job. */
async function roundTrip(name: string, prompts: ArtifactRef, m: { policy: string; reference: string; checkpoint: string }): Promise<{ pairs: Record<string, unknown>[]; job?: Job }> {
  const generated = await streamResult<GenerateResult>(
    generator.generate({
      model: { onnx: ref(m.policy) },
      prompts: { $case: 'promptSet', value: prompts },
      params: { n: 2, temperature: 1, topK: 0, maxNewTokens: 8, stop: [], seed: 3, greedy: false },
      outputUri: path.join(dataDir, `${name}-responses.jsonl`),
    }),
  );
  const judged = await streamResult<JudgePairsResult>(
    judge.judgePairs({
      method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
      responses: generated.responses,
      spaImplicit: { policy: { onnx: ref(m.policy) }, reference: { onnx: ref(m.reference) }, tieTolerance: 0, lengthPenalty: 0 },
      unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP,
      outputUri: path.join(dataDir, `${name}-pairs.jsonl`),
    }),
  );
  const pairs = lines(judged.pairs!.uri);
  await new Promise<void>((resolve, reject) =>
    trainer.startJob(
      {
        jobId: name,
        spec: {
          kind: { $case: 'preference', value: { init: ref(m.checkpoint), pairs: judged.pairs, loss: PreferenceLoss.PREFERENCE_LOSS_DPO, beta: 0.1, droSolverAddress: '' } },
          hparams: HPARAMS,
          outputUri: path.join(dataDir, `${name}-model`),
          exportOnnx: false,
        },
      },
      (error) => (error ? reject(error) : resolve()),
    ),
  );
  const job = await new Promise<Job | undefined>((resolve, reject) => {
    let last: Job | undefined;
    const stream = trainer.watchJob({ jobId: name });
    stream.on('data', (message: { event?: { $case: string; value: unknown } }) => {
      if (message.event?.$case === 'job') last = message.event.value as Job;
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(last));
  });
  return { pairs, job };
}

beforeAll(async () => {
  models = await tinyModels();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'prompt-encoding-e2e-'));
  const python = await venvPython();
  const [generatorAddress, judgeAddress, trainerAddress] = await Promise.all([
    serve('generator', TSX, ['services/generator/src/main.ts'], { LM_THREADS: '1' }),
    serve('judge', TSX, ['services/judge/src/main.ts'], { LM_THREADS: '1' }),
    serve('trainer', python, ['-m', 'alignment_trainer.server'], { PYTHONPATH: path.join(ROOT, 'services/trainer/src'), TRAINER_THREADS: '1' }),
  ]);
  generator = createClient(GeneratorClient, generatorAddress);
  judge = createClient(JudgeClient, judgeAddress);
  trainer = createClient(TrainerClient, trainerAddress);
}, TINY_MODELS_TIMEOUT_MS);

afterAll(async () => {
  for (const client of [generator, judge, trainer]) client?.close();
  await Promise.all(processes.map((p) => p.stop('SIGTERM')));
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

it('samples, judges and trains on a multi-turn conversational prompt set, keeping every turn', async () => {
  const turns = (i: number) => [
    { role: 'system', content: 'Answer briefly.' },
    { role: 'user', content: `What is ${i} plus ${i}?` },
    { role: 'assistant', content: `${2 * i}.` },
    { role: 'user', content: `And ${i} times ${i}?` },
  ];
  const file = path.join(dataDir, 'multi-turn.jsonl');
  fs.writeFileSync(file, Array.from({ length: 8 }, (_, i) => JSON.stringify({ id: `m-${i}`, prompt: turns(i) })).join('\n') + '\n');
  const { pairs, job } = await roundTrip('multi-turn', ref(file), { policy: models.policy, reference: models.reference, checkpoint: models.policyCheckpoint });
  expect(pairs.length).toBeGreaterThan(0);
  for (const pair of pairs) {
    expect(pair.prompt).toEqual(turns(Number(String(pair.id).slice(2))));
    expect([typeof pair.chosen, typeof pair.rejected]).toEqual(['string', 'string']);
  }
  expect({ state: job && JobState[job.state], error: job?.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: '' });
});

it('takes a model without a chat template with raw-text prompts end to end, and refuses the template naming prompt_encoding', async () => {
  const bare = {
    policy: withoutTemplate(models.policy, 'bare-policy'),
    reference: withoutTemplate(models.reference, 'bare-reference'),
    checkpoint: withoutTemplate(models.policyCheckpoint, 'bare-checkpoint'),
  };
  const file = path.join(dataDir, 'raw.jsonl');
  fs.writeFileSync(file, Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `Question ${i}: what is ${i} plus ${i + 1}?` })).join('\n') + '\n');
  const { pairs, job } = await roundTrip('raw', ref(file), bare);
  expect(pairs.length).toBeGreaterThan(0);
  expect({ state: job && JobState[job.state], error: job?.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: '' });
  const refused = await streamResult<GenerateResult>(
    generator.generate({
      model: { onnx: ref(bare.policy) },
      prompts: { $case: 'promptSet', value: ref(file) },
      params: { n: 2, temperature: 1, topK: 0, maxNewTokens: 8, stop: [], seed: 3, greedy: false },
      outputUri: path.join(dataDir, 'refused.jsonl'),
      promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE,
    }),
  ).catch((e: unknown) => e as grpc.ServiceError);
  expect((refused as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
  expect((refused as grpc.ServiceError).details).toContain('prompt_encoding');
});
