// The Coordinator API on a real loopback server, its stages executed over gRPC against test doubles of the
// generator (two replicas), judge and trainer: StartRun/GetRun/ListRuns/WatchRun/CancelRun, INVALID_ARGUMENT naming
// the field, one trace per run, sharding over replicas, and a service that stays down.
import * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import {
  Configuration,
  CoordinatorClient,
  DESCRIPTOR_SET_PATH,
  JobState,
  Stage,
  type Run,
  type WatchRunResponse,
} from '@alignment/contracts';
import { createClient, createLogger, fieldViolationsOf, initTracing, memorySpans, startServer, unaryCall, type RunningServer } from '@alignment/service-kit';
import { freePort, waitFor } from '@alignment/service-kit/testing';
import { grpcExecutors, type GrpcExecutorOptions } from './clients/grpc-executors';
import { databasePath } from './config';
import { RunEngine, RunStore } from './run';
import { coordinatorBinding } from './service';
import { GeneratorDouble, JudgeDouble, TrainerDouble } from '../testing/grpc-service-doubles';
import { makeWorkspace, validSpec, type SpecPartial, type Workspace } from '../testing/run-fixtures';

initTracing('coordinator-test', 'memory');
const logger = createLogger('coordinator-test');

let ws: Workspace;
let generators: GeneratorDouble[];
let judge: JudgeDouble;
let trainer: TrainerDouble;
let store: RunStore;
let engine: RunEngine;
let executors: ReturnType<typeof grpcExecutors>;
let coordinator: RunningServer;
let client: CoordinatorClient;

const options = (overrides: Partial<GrpcExecutorOptions> = {}): GrpcExecutorOptions => ({
  generatorAddresses: generators.map((g) => g.address),
  judgeAddresses: [judge.address],
  trainerAddress: trainer.address,
  rpcDeadlineMs: 5_000,
  stageDeadlineMs: 30_000,
  retry: { attempts: 3, initialBackoffMs: 50, maxBackoffMs: 200 },
  checkpointEverySteps: 25,
  logger,
  ...overrides,
});

beforeAll(async () => {
  ws = makeWorkspace({ rounds: 1 });
  generators = [await GeneratorDouble.start(), await GeneratorDouble.start()];
  judge = await JudgeDouble.start();
  trainer = await TrainerDouble.start({ steps: 3, stepMs: 20 });
  const dataDir = path.join(ws.root, 'data');
  store = RunStore.open(databasePath(dataDir));
  executors = grpcExecutors(options());
  engine = new RunEngine({ store, dataDir, executors, logger });
  coordinator = await startServer({
    name: 'coordinator-test',
    port: 0,
    host: '127.0.0.1',
    bindings: [coordinatorBinding(engine)],
    descriptorSetPath: DESCRIPTOR_SET_PATH,
  });
  client = createClient(CoordinatorClient, coordinator.address, { defaultDeadlineMs: 10_000 });
});

afterAll(async () => {
  client.close();
  await engine.stop();
  await coordinator.shutdown();
  executors.close();
  store.close();
  await Promise.all([...generators.map((g) => g.shutdown()), judge.shutdown(), trainer.shutdown()]);
  ws.cleanup();
});

const startRun = (runId: string, overrides: SpecPartial = {}) => unaryCall(client, client.startRun, { runId, spec: validSpec(ws, overrides) });
const getRun = async (runId: string) => (await unaryCall(client, client.getRun, { runId })).run!;

/** WatchRun until the stream ends; resolves with every message. */
function watch(runId: string): Promise<WatchRunResponse[]> {
  return new Promise((resolve, reject) => {
    const messages: WatchRunResponse[] = [];
    const call = client.watchRun({ runId }, new grpc.Metadata(), { deadline: Date.now() + 30_000 });
    call.on('data', (m: WatchRunResponse) => messages.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(messages));
  });
}

function statusOf(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: grpc.ServiceError) => error,
  );
}

describe('StartRun', () => {
  it('rejects an invalid spec with INVALID_ARGUMENT naming the field', async () => {
    const error = await statusOf(
      startRun('bad', { configuration: Configuration.CONFIGURATION_WDRO, loss: { wdro: { delta: 0.7, radius: { $case: 'rho', value: 0.3 } } } }),
    );
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain('spec.loss.wdro.delta: must be greater than 0 and less than 0.5, got 0.7');
    expect(error.metadata.get('invalid-field')).toEqual(['spec.loss.wdro.delta']);
    const noSpec = await statusOf(unaryCall(client, client.startRun, { runId: 'x' }));
    expect([noSpec.code, noSpec.details]).toEqual([grpc.status.INVALID_ARGUMENT, 'invalid spec: is required']);
    const badId = await statusOf(startRun('no spaces allowed'));
    expect(badId.metadata.get('invalid-field')).toEqual(['run_id']);
    await expect(statusOf(getRun('bad'))).resolves.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('refuses a value outside its buf.validate range with a google.rpc.BadRequest naming the field', async () => {
    const lr = await statusOf(startRun('bad-lr', { seedTraining: { learningRate: -1, batchSize: 4 } }));
    expect(lr.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fieldViolationsOf(lr.metadata)).toEqual([
      { field: 'spec.seed_training.learning_rate', description: 'must be greater than 0 and less than 1, got -1' },
    ]);
    const rounds = await statusOf(startRun('bad-rounds', { rounds: 21 }));
    expect(fieldViolationsOf(rounds.metadata)).toEqual([{ field: 'spec.rounds', description: 'must be less than or equal to 20, got 21' }]);
    const page = await statusOf(unaryCall(client, client.listRuns, { pageSize: 1001, pageToken: '' }));
    expect([page.code, fieldViolationsOf(page.metadata)]).toEqual([
      grpc.status.INVALID_ARGUMENT,
      [{ field: 'page_size', description: 'must be less than or equal to 1000, got 1001' }],
    ]);
    await expect(statusOf(getRun('bad-lr'))).resolves.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

describe('a run over gRPC', () => {
  let run: Run;
  let messages: WatchRunResponse[];

  beforeAll(async () => {
    const started = (await startRun('grpc-run', { sharding: { generatorShards: 2, judgeShards: 2 } })).run!;
    expect(started.state).toBe(JobState.JOB_STATE_RUNNING);
    expect(started.traceId).toMatch(/^[0-9a-f]{32}$/);
    messages = await watch('grpc-run');
    run = await getRun('grpc-run');
  }, 60_000);

  it('succeeds, and WatchRun streams stages, progress, round metrics and ends with the final run', () => {
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const kinds = new Set(messages.map((m) => m.event?.$case));
    expect(kinds).toEqual(new Set(['stage', 'progress', 'roundMetrics', 'run']));
    const last = messages.at(-1)!.event;
    expect(last?.$case === 'run' && last.value.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const stages = messages.flatMap((m) => (m.event?.$case === 'stage' && m.event.value.state === JobState.JOB_STATE_RUNNING ? [`${m.event.value.round} ${Stage[m.event.value.stage]}`] : []));
    expect(stages.slice(-4)).toEqual(['1 STAGE_GENERATE', '1 STAGE_JUDGE', '1 STAGE_LEARN', '1 STAGE_EVALUATE']);
    const metrics = run.rounds.find((r) => r.round === 1)!.metrics;
    expect(Object.keys(metrics)).toEqual(expect.arrayContaining(['eval/win_rate', 'eval/win_rate_ci_low', 'eval/win_rate_ci_high', 'eval/mean_length', 'judge/dropped_ties', 'judge/self_label_accuracy', 'train/loss']));
  });

  it('sends one call per shard, to the replicas in turn, and the trainer one job per LEARN', () => {
    const shardsOf = (g: GeneratorDouble) => new Set(g.calls.map((c) => `${c.shard?.index}/${c.shard?.count}`));
    expect(shardsOf(generators[0])).toEqual(new Set(['0/2']));
    expect(shardsOf(generators[1])).toEqual(new Set(['1/2']));
    expect(new Set(judge.calls.map((c) => `${c.shard?.index}/${c.shard?.count}`))).toEqual(new Set(['0/2', '1/2']));
    const jobs = trainer.createdJobs.filter((id) => id.startsWith('grpc-run-'));
    expect(jobs.map((id) => id.replace(/^grpc-run-[0-9a-f]{8}-/, ''))).toEqual(['r0-learn-a1', 'r1-learn-a1']);
    expect(run.latestModel?.onnx?.sha256).toHaveLength(64);
    // Issue 12: without a checkpoint interval a trainer killed mid-LEARN left the run INTERRUPTED at step 0.
    expect(jobs.map((id) => trainer.jobs.get(id)!.job.spec?.hparams?.checkpointEverySteps)).toEqual([25, 25]);
  });

  it('is one trace: the run span, its stage spans, and the calls to the services (both ends) share the trace id', () => {
    const spans = memorySpans().filter((s) => s.spanContext().traceId === run.traceId);
    const names = spans.map((s) => s.name);
    const root = spans.find((s) => s.name === 'coordinator.run')!;
    expect(root.parentSpanContext).toBeUndefined();
    const stageSpans = spans.filter((s) => s.name.startsWith('coordinator.stage '));
    expect(stageSpans).toHaveLength(6);
    expect(stageSpans.every((s) => s.parentSpanContext?.spanId === root.spanContext().spanId)).toBe(true);
    for (const rpc of ['alignment.v1.Generator/Generate', 'alignment.v1.Judge/JudgePairs', 'alignment.v1.Trainer/StartJob', 'alignment.v1.Trainer/WatchJob']) {
      expect(names.filter((n) => n === rpc).length).toBeGreaterThanOrEqual(2); // client and server span
    }
    // The StartRun call itself is its own (client) trace; the run is not a child of it.
    expect(memorySpans().some((s) => s.name === 'alignment.v1.Coordinator/StartRun' && s.spanContext().traceId !== run.traceId)).toBe(true);
  });
});

describe('GetRun, ListRuns, late WatchRun, CancelRun', () => {
  it('StartRun is idempotent on run_id; another spec under it is ALREADY_EXISTS', async () => {
    const again = (await startRun('grpc-run', { sharding: { generatorShards: 2, judgeShards: 2 } })).run!;
    expect(again.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const conflict = await statusOf(startRun('grpc-run'));
    expect(conflict.code).toBe(grpc.status.ALREADY_EXISTS);
  });

  it('a late watcher first gets the current stage, and CancelRun cancels the run and its trainer job', async () => {
    trainer.stepMs = 200;
    try {
      await startRun('slow', { configuration: Configuration.CONFIGURATION_DPO_SEED, prompts: undefined, rounds: 0, roundTraining: undefined });
      await waitFor(async () => trainer.createdJobs.some((id) => id.startsWith('slow-')), 10_000, 'the trainer job');
      const messages: WatchRunResponse[] = [];
      const call = client.watchRun({ runId: 'slow' }, new grpc.Metadata(), { deadline: Date.now() + 30_000 });
      const ended = new Promise<void>((resolve, reject) => {
        call.on('data', (m: WatchRunResponse) => messages.push(m));
        call.on('error', reject);
        call.on('end', resolve);
      });
      await waitFor(async () => messages.length > 0, 5_000, 'the first watch message');
      expect(messages[0].event).toEqual({ $case: 'stage', value: { round: 0, stage: Stage.STAGE_LEARN, state: JobState.JOB_STATE_RUNNING, message: 'current stage' } });

      const cancelled = (await unaryCall(client, client.cancelRun, { runId: 'slow' })).run!;
      expect(cancelled.state).toBe(JobState.JOB_STATE_CANCELLED);
      await ended;
      const last = messages.at(-1)!.event;
      expect(last?.$case === 'run' && last.value.state).toBe(JobState.JOB_STATE_CANCELLED);
      expect(trainer.cancelCalls).toEqual([trainer.createdJobs.find((id) => id.startsWith('slow-'))]);
      const succeeded = await statusOf(unaryCall(client, client.cancelRun, { runId: 'grpc-run' }));
      expect(succeeded.code).toBe(grpc.status.FAILED_PRECONDITION);
    } finally {
      trainer.stepMs = 20;
    }
  }, 30_000);

  // Issue 12: a 1 MiB run_id was echoed into the status (too big for the trailers): the client hung to its deadline.
  it('answers a huge run_id at once, with the status message clipped', async () => {
    const runId = 'x'.repeat(1 << 20);
    for (const call of [
      () => unaryCall(client, client.getRun, { runId }),
      () => unaryCall(client, client.startRun, { runId: `-${runId}`, spec: validSpec(ws) }),
    ]) {
      const started = Date.now();
      const status = await statusOf(call());
      expect(Date.now() - started).toBeLessThan(2_000);
      expect([grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT]).toContain(status.code);
      expect(status.details.length).toBeLessThan(2_100);
      expect(status.details).toMatch(/… \(\d+ more characters\)$/);
    }
  });

  it('ListRuns pages through the runs in creation order', async () => {
    await startRun('third', { configuration: Configuration.CONFIGURATION_DPO_SEED, prompts: undefined, rounds: 0, roundTraining: undefined });
    const first = await unaryCall(client, client.listRuns, { pageSize: 2, pageToken: '' });
    expect(first.runs.map((r) => r.runId)).toEqual(['grpc-run', 'slow']);
    expect(first.nextPageToken).not.toBe('');
    const second = await unaryCall(client, client.listRuns, { pageSize: 2, pageToken: first.nextPageToken });
    expect(second.runs.map((r) => r.runId)).toEqual(['third']);
    expect(second.nextPageToken).toBe('');
    const all = await unaryCall(client, client.listRuns, { pageSize: 0, pageToken: '' });
    expect(all.runs).toHaveLength(3);
    expect((await statusOf(unaryCall(client, client.listRuns, { pageSize: 5000, pageToken: '' }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    // Issue 12: '1e22' and '0x10' used to be accepted (Number() reads them as integers).
    for (const pageToken of ['abc', '1e22', '0x10', ' 1', '1.0', '-1', '9'.repeat(16)]) {
      const status = await statusOf(unaryCall(client, client.listRuns, { pageSize: 1, pageToken }));
      expect([pageToken, status.code, status.details]).toEqual([pageToken, grpc.status.INVALID_ARGUMENT, 'invalid page_token: not a token from a previous ListRuns response']);
    }
    await engine.settled('third');
  }, 30_000);
});

describe('a service that stays down', () => {
  it('fails the run naming the service and the stage; StartRun with the same run_id resumes it once the service is up', async () => {
    const port = await freePort();
    // Retries spanning several of the channel's (capped) reconnect backoffs, so the revived service is seen.
    const retry = { attempts: 6, initialBackoffMs: 50, maxBackoffMs: 200 };
    const downExecutors = grpcExecutors(options({ generatorAddresses: [`127.0.0.1:${port}`], retry }));
    const downStore = RunStore.open(databasePath(path.join(ws.root, 'down-data')));
    // Automatic resumes off: this test is about the failure a person then resumes (auto-resume.spec.ts has the rest).
    const downEngine = new RunEngine({
      store: downStore, dataDir: path.join(ws.root, 'down-data'), executors: downExecutors, logger,
      autoResume: { budget: 0, backoffMs: 1, maxBackoffMs: 1 },
    });
    let revived: GeneratorDouble | undefined;
    try {
      await downEngine.startRun({ runId: 'down', spec: validSpec(ws) });
      await downEngine.settled('down');
      const failed = downEngine.getRun('down');
      expect(failed.state).toBe(JobState.JOB_STATE_FAILED);
      expect(failed.error).toMatch(new RegExp(`^round 0 EVALUATE: generator at 127\\.0\\.0\\.1:${port} unavailable after 6 attempts`));

      revived = await GeneratorDouble.start({ port });
      await downEngine.startRun({ runId: 'down', spec: validSpec(ws) });
      await downEngine.settled('down');
      expect(downEngine.getRun('down').state).toBe(JobState.JOB_STATE_SUCCEEDED);
    } finally {
      await downEngine.stop();
      downExecutors.close();
      downStore.close();
      await revived?.shutdown();
    }
  }, 30_000);
});
