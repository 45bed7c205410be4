// Crash safety of the coordinator binary: killed with SIGKILL twice — mid-GENERATE and while its trainer job runs —
// and restarted each time, the run completes with the same artifacts (sha256) as an uninterrupted run, no sample
// lost or duplicated, the trainer job re-attached by its job id rather than started twice, and every span in the
// run's one trace. The generator, judge and trainer are test doubles served from this process, so they outlive the
// coordinator as real services would.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CoordinatorClient, JobState, RunSpec, type Run } from '@alignment/contracts';
import { createClient, unaryCall, type SpanRecord } from '@alignment/service-kit';
import { freePort, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { deriveSeed } from './run/seeds';
import { Gate } from '../testing/gate';
import { GeneratorDouble, JudgeDouble, TrainerDouble } from '../testing/grpc-service-doubles';
import { makeWorkspace, validSpec, type Workspace } from '../testing/run-fixtures';

const root = path.resolve(__dirname, '../../..');

let ws: Workspace;
let generator: GeneratorDouble;
let judge: JudgeDouble;
let trainer: TrainerDouble;
const spawned: SpawnedProcess[] = [];

beforeAll(async () => {
  ws = makeWorkspace({ rounds: 1, promptsPerRound: 8, evalPrompts: 4 });
  generator = await GeneratorDouble.start({ perItemMs: 20 });
  judge = await JudgeDouble.start({ perItemMs: 5 });
  trainer = await TrainerDouble.start({ steps: 6, stepMs: 120 });
});

afterAll(async () => {
  for (const child of spawned) await child.stop('SIGKILL');
  await Promise.all([generator.shutdown(), judge.shutdown(), trainer.shutdown()]);
  ws.cleanup();
});

interface Coordinator {
  process: SpawnedProcess;
  client: CoordinatorClient;
}

// The coordinator runs under `node --import tsx`, not the tsx CLI: the CLI relays a signal to its child and, when the
// child does not acknowledge it within 30 ms (a loaded machine), exits 143 and SIGKILLs it, which fails the graceful
// shutdown checks below for a reason that is not the coordinator's.
const TSX_MAIN = ['--import', 'tsx', 'services/coordinator/src/main.ts'];

async function startCoordinator(port: number, dataDir: string, tracesFile: string): Promise<Coordinator> {
  const child = spawnProcess(
    process.execPath,
    TSX_MAIN,
    {
      PORT: String(port),
      DATA_DIR: dataDir,
      GENERATOR_ADDRESS: generator.address,
      JUDGE_ADDRESS: judge.address,
      TRAINER_ADDRESS: trainer.address,
      UNAVAILABLE_ATTEMPTS: '4',
      RETRY_BACKOFF_MS: '100',
      OTEL_TRACES_EXPORTER: 'jsonl',
      OTEL_TRACES_FILE: tracesFile,
      LOG_LEVEL: 'info',
    },
    root,
  );
  spawned.push(child);
  const client = createClient(CoordinatorClient, `127.0.0.1:${port}`, { defaultDeadlineMs: 5_000 });
  await waitFor(
    async () => {
      if (child.child.exitCode !== null) throw new Error(`the coordinator exited: ${child.output()}`);
      return unaryCall(client, client.listRuns, { pageSize: 1, pageToken: '' }).then(() => true);
    },
    60_000,
    'the coordinator to serve',
  );
  return { process: child, client };
}

async function kill(coordinator: Coordinator): Promise<void> {
  coordinator.client.close();
  await coordinator.process.stop('SIGKILL');
}

const getRun = async (c: Coordinator, runId: string): Promise<Run> => (await unaryCall(c.client, c.client.getRun, { runId })).run!;

function stageOutputs(dataDir: string, runId: string): Record<string, string> {
  const shas: Record<string, string> = {};
  const runDir = path.join(dataDir, 'runs', runId);
  // The round directories hold the stages (the run's directory also has the coordinator's TensorBoard events).
  for (const round of fs.readdirSync(runDir).filter((name) => /^round-\d+$/.test(name))) {
    for (const stage of fs.readdirSync(path.join(runDir, round))) {
      const manifest = JSON.parse(fs.readFileSync(path.join(runDir, round, stage, 'stage.json'), 'utf8'));
      for (const [name, output] of Object.entries(manifest.outputs as Record<string, { sha256: string }>)) shas[`${round}/${stage}/${name}`] = output.sha256;
    }
  }
  return shas;
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

it('survives kill -9 mid-stage: same artifacts, no lost or duplicated samples, the trainer job re-attached', async () => {
  const port = await freePort();
  const dataDir = path.join(ws.root, 'data');
  const tracesFile = path.join(ws.root, 'spans.jsonl');
  const spec: RunSpec = validSpec(ws, { sharding: { generatorShards: 2, judgeShards: 2 } });
  const output: string[] = [];

  // 1. Start the run; kill the coordinator while round 1's GENERATE is streaming from the generator (held there).
  const generateSeed = deriveSeed(spec.seed, 1, 'GENERATE');
  const generating = new Gate();
  generator.holdIf = (request) => (request.params?.seed === generateSeed ? generating.promise : undefined);
  let coordinator = await startCoordinator(port, dataDir, tracesFile);
  const started = (await unaryCall(coordinator.client, coordinator.client.startRun, { runId: 'killed', spec })).run!;
  await waitFor(async () => generator.calls.filter((c) => c.params?.seed === generateSeed).length === 2, 60_000, 'round 1 GENERATE to start');
  await kill(coordinator);
  output.push(coordinator.process.output());
  expect(fs.existsSync(path.join(dataDir, 'runs', 'killed', 'round-1', 'generate', 'stage.json'))).toBe(false);
  await waitFor(async () => generator.cancelled === 2, 10_000, 'the generator to see both shard calls cancelled');
  generator.holdIf = undefined;
  generating.open();

  // 2. Restart: it resumes by itself; kill it again while the trainer runs round 1's job (held RUNNING).
  const hold = new Gate();
  trainer.hold = hold.promise;
  coordinator = await startCoordinator(port, dataDir, tracesFile);
  const learnJob = (id: string) => id.startsWith('killed-') && id.endsWith('-r1-learn-a1');
  await waitFor(async () => trainer.createdJobs.some(learnJob), 60_000, 'round 1 LEARN to start its trainer job');
  const jobId = trainer.createdJobs.find(learnJob)!;
  expect(trainer.jobs.get(jobId)!.job.state).toBe(JobState.JOB_STATE_RUNNING);
  // Killed while it watches the job (not between StartJob and WatchJob), so that step 3 is a second watch.
  await waitFor(async () => trainer.watchCalls.includes(jobId), 60_000, 'the job to be watched');
  await kill(coordinator);
  output.push(coordinator.process.output());

  // 3. Restart again: it re-attaches to the job (StartJob with the same id, then WatchJob), which then finishes;
  // the run completes. Then an uninterrupted run of the same spec, for reference.
  coordinator = await startCoordinator(port, dataDir, tracesFile);
  await waitFor(async () => trainer.watchCalls.filter((id) => id === jobId).length >= 2, 60_000, 'the job to be watched again');
  expect(trainer.jobs.get(jobId)!.job.state).toBe(JobState.JOB_STATE_RUNNING);
  trainer.hold = undefined;
  hold.open();
  const finished = await waitFor(
    async () => {
      const run = await getRun(coordinator, 'killed');
      return run.state === JobState.JOB_STATE_RUNNING ? undefined : run;
    },
    60_000,
    'the resumed run to end',
  );
  expect([finished.state, finished.error]).toEqual([JobState.JOB_STATE_SUCCEEDED, '']);
  await unaryCall(coordinator.client, coordinator.client.startRun, { runId: 'reference', spec });
  await waitFor(async () => (await getRun(coordinator, 'reference')).state === JobState.JOB_STATE_SUCCEEDED, 60_000, 'the reference run');
  coordinator.client.close();
  expect(await coordinator.process.stop('SIGTERM')).toBe(0);
  output.push(coordinator.process.output());

  // The same artifacts, byte for byte.
  const killed = stageOutputs(dataDir, 'killed');
  expect(Object.keys(killed)).toHaveLength(Object.keys(stageOutputs(dataDir, 'reference')).length);
  expect(killed).toEqual(stageOutputs(dataDir, 'reference'));

  // No sample lost or duplicated: every prompt once, in order, with its two responses; every pair counted once.
  const responses = lines(path.join(dataDir, 'runs', 'killed', 'round-1', 'generate', 'responses.jsonl'));
  expect(responses.map((r) => r.prompt_index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  expect(responses.every((r) => r.responses.length === 2)).toBe(true);
  const pairs = lines(path.join(dataDir, 'runs', 'killed', 'round-1', 'judge', 'pairs.jsonl'));
  expect(pairs.map((p) => p.prompt_index)).toEqual([...new Set(pairs.map((p) => p.prompt_index))].sort((a, b) => a - b));
  expect(pairs).toHaveLength(finished.rounds.find((r) => r.round === 1)!.metrics['judge/num_pairs']);
  expect(lines(path.join(dataDir, 'runs', 'killed', 'round-1', 'evaluate', 'samples.jsonl'))).toHaveLength(4);

  // The trainer saw the round 1 job started once and re-attached once, never a second job for the stage.
  expect(trainer.startJobCalls.filter((id) => id === jobId)).toHaveLength(2);
  expect(trainer.createdJobs.filter((id) => id.startsWith('killed-') && id.includes('-r1-learn-'))).toEqual([jobId]);
  expect(trainer.watchCalls.filter((id) => id === jobId).length).toBeGreaterThanOrEqual(2);
  expect(generator.cancelled).toBe(2);

  // One trace: both executions' spans carry the run's trace id; resumed executions hang under the root span.
  const spans: SpanRecord[] = lines(tracesFile);
  const runSpans = spans.filter((s) => s.service === 'coordinator' && s.trace_id === started.traceId);
  const resumes = runSpans.filter((s) => s.name === 'coordinator.run.resume');
  expect(resumes.length).toBeGreaterThanOrEqual(1);
  const rootSpanId = resumes[0].parent_span_id;
  expect(resumes.every((s) => s.parent_span_id === rootSpanId)).toBe(true);
  expect(runSpans.filter((s) => s.name.startsWith('coordinator.stage ')).length).toBeGreaterThanOrEqual(6);
  expect(runSpans.filter((s) => s.name === 'alignment.v1.Trainer/StartJob').length).toBeGreaterThanOrEqual(3);
  expect(output.join('\n')).toContain('"msg":"resuming run"');
}, 120_000);

// Issue 12: two coordinators on one DATA_DIR both resumed the same run, re-ran its stages and ended it FAILED.
it('refuses to start a second coordinator on a data directory another one serves, naming it', async () => {
  const dataDir = path.join(ws.root, 'shared-data');
  const first = await startCoordinator(await freePort(), dataDir, path.join(ws.root, 'spans-first.jsonl'));
  const second = spawnProcess(
    process.execPath,
    TSX_MAIN,
    { PORT: String(await freePort()), DATA_DIR: dataDir, GENERATOR_ADDRESS: generator.address, JUDGE_ADDRESS: judge.address, TRAINER_ADDRESS: trainer.address },
    root,
  );
  spawned.push(second);
  await waitFor(async () => second.child.exitCode !== null, 60_000, 'the second coordinator to exit');
  expect(second.child.exitCode).toBe(1);
  expect(second.output()).toMatch(new RegExp(`coordinator failed to start: another coordinator serves ${dataDir} \\(pid \\d+ on .*\\); run one coordinator per DATA_DIR`));
  // The first one still serves, and once it is gone (SIGKILL: no cleanup) the next one starts.
  expect((await unaryCall(first.client, first.client.listRuns, { pageSize: 1, pageToken: '' })).runs).toEqual([]);
  await kill(first);
  const third = await startCoordinator(await freePort(), dataDir, path.join(ws.root, 'spans-third.jsonl'));
  third.client.close();
  expect(await third.process.stop('SIGTERM')).toBe(0);
}, 120_000);
