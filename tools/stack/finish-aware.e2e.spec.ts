/**
 * End to end, the finish-aware path (issue 11 defect 1; docs/algorithm.md §7) through the real services, each its own
 * process on loopback: the generator samples the tiny policy with a small max_new_tokens, so some responses are cut
 * ("length") and some end at a stop string ("stop"); the judge labels them with the SPA implicit reward under the
 * default policy (UNFINISHED_PAIRS_DROP) and under UNFINISHED_PAIRS_KEEP; the trainer runs one DPO job on the kept
 * pairs, cut responses included (tokenised without EOS). Asserts the pairs carry chosen_finished / rejected_finished,
 * that DROP leaves no pair with an unfinished response and counts what it dropped, and that the job succeeds.
 *
 * Cost (2 cores): the tiny models come from the test cache (tools/testing/tiny-models.ts); ~10 s for the services to
 * listen (the trainer's torch import dominates), ~3 s to generate, judge twice and train: about 20 s.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  GeneratorClient,
  JobState,
  JudgeClient,
  JudgeMethod,
  PreferenceLoss,
  TrainerClient,
  UnfinishedPairs,
  type GenerateResult,
  type Job,
  type JudgePairsRequest,
  type JudgePairsResult,
} from '@alignment/contracts';
import { createClient } from '@alignment/service-kit';
import { freePort, isListening, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { tinyModels, venvPython, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../testing/tiny-models';
import { ROOT } from './harness';

jest.setTimeout(180_000);

const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

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

type Pair = { prompt: string; chosen: string; rejected: string; chosen_finished?: boolean; rejected_finished?: boolean };
const readPairs = (uri: string): Pair[] =>
  fs.readFileSync(new URL(uri), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Pair);

beforeAll(async () => {
  models = await tinyModels();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'finish-aware-e2e-'));
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

it('carries finish reasons from the generator through the judge into the trainer', async () => {
  const prompts = Array.from({ length: 24 }, (_, i) => `Question ${i}: what is ${i} plus ${i + 1}?`);
  // The random tiny policy never samples EOS this early: the stop strings end some responses ("stop"), max_new_tokens
  // cuts the others ("length").
  const generated = await streamResult<GenerateResult>(
    generator.generate({
      model: { onnx: { uri: models.policy, sha256: '', sizeBytes: 0 } },
      prompts: { $case: 'inlinePrompts', value: { prompts } },
      params: { n: 2, temperature: 1, topK: 0, maxNewTokens: 10, stop: ['e', 'a', 'o'], seed: 3, greedy: false },
      outputUri: path.join(dataDir, 'responses.jsonl'),
    }),
  );
  const reasons = fs
    .readFileSync(new URL(generated.responses!.uri), 'utf8')
    .trim()
    .split('\n')
    .flatMap((l) => JSON.parse(l).finish_reasons as string[]);
  expect(reasons).toContain('length');
  expect(reasons).toContain('stop');

  const request = (name: string, unfinishedPairs?: UnfinishedPairs): JudgePairsRequest => ({
    method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
    responses: generated.responses,
    spaImplicit: {
      policy: { onnx: { uri: models.policy, sha256: '', sizeBytes: 0 } },
      reference: { onnx: { uri: models.reference, sha256: '', sizeBytes: 0 } },
      tieTolerance: 0,
      lengthPenalty: 0,
    },
    outputUri: path.join(dataDir, `${name}.jsonl`),
    ...(unfinishedPairs !== undefined ? { unfinishedPairs } : {}),
  });
  const dropped = await streamResult<JudgePairsResult>(judge.judgePairs(request('dropped')));
  const droppedPairs = readPairs(dropped.pairs!.uri);
  expect(droppedPairs.length).toBeGreaterThan(0);
  for (const pair of droppedPairs) expect([pair.chosen_finished, pair.rejected_finished]).toEqual([true, true]);
  expect(Number(dropped.unfinished?.dropped)).toBeGreaterThan(0);
  expect(Number(dropped.unfinished?.inPairs ?? 0)).toBe(0);

  const kept = await streamResult<JudgePairsResult>(judge.judgePairs(request('kept', UnfinishedPairs.UNFINISHED_PAIRS_KEEP)));
  const keptPairs = readPairs(kept.pairs!.uri);
  const withUnfinished = keptPairs.filter((p) => p.chosen_finished === false || p.rejected_finished === false);
  for (const pair of keptPairs) expect([typeof pair.chosen_finished, typeof pair.rejected_finished]).toEqual(['boolean', 'boolean']);
  expect(withUnfinished.length).toBeGreaterThan(0);
  expect(Number(kept.unfinished?.inPairs)).toBe(withUnfinished.length);
  expect(Number(kept.unfinished?.dropped ?? 0)).toBe(0);
  // The same prompts, identical and invalid alike: what DROP dropped, KEEP labelled (or found tied).
  const labelled = (r: JudgePairsResult) => Number(r.counts?.numPairs ?? 0) + Number(r.counts?.droppedTies ?? 0);
  expect(labelled(kept)).toBe(labelled(dropped) + Number(dropped.unfinished?.dropped));

  // One DPO job on the kept pairs: the trainer reads the flags and tokenises the cut responses without EOS.
  const jobId = 'finish-aware';
  await new Promise<void>((resolve, reject) =>
    trainer.startJob(
      {
        jobId,
        spec: {
          kind: {
            $case: 'preference',
            value: {
              init: { uri: models.policyCheckpoint, sha256: '', sizeBytes: 0 },
              pairs: kept.pairs,
              loss: PreferenceLoss.PREFERENCE_LOSS_DPO,
              beta: 0.1,
              droSolverAddress: '',
            },
          },
          hparams: {
            learningRate: 1e-4,
            epochs: 1,
            maxSteps: 2,
            batchSize: 4,
            gradientAccumulationSteps: 1,
            maxLength: 128,
            lrScheduler: 'constant',
            weightDecay: 0,
            maxGradNorm: 0,
            seed: 1,
            gradientCheckpointing: false,
            bf16: false,
            checkpointEverySteps: 0,
            dtype: '',
            fullLogits: false,
            cacheReferenceLogps: false,
            offloadActivations: false,
          },
          outputUri: path.join(dataDir, 'model'),
          exportOnnx: false,
        },
      },
      (error) => (error ? reject(error) : resolve()),
    ),
  );
  const job = await new Promise<Job | undefined>((resolve, reject) => {
    let last: Job | undefined;
    const stream = trainer.watchJob({ jobId });
    stream.on('data', (message: { event?: { $case: string; value: unknown } }) => {
      if (message.event?.$case === 'job') last = message.event.value as Job;
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(last));
  });
  expect({ state: job && JobState[job.state], error: job?.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: '' });
});
