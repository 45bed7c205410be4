// The coordinator binary with LEARN_EXECUTOR=kubernetes: killed with SIGKILL while its round 0 LEARN Job runs and
// restarted, it re-attaches to that Job (found by its deterministic name) instead of creating a second one, and the
// run completes. The Kubernetes API is a fake on loopback that plays the Job controller and the trainer pod
// (testing/fake-kubernetes-api.ts); the generator and judge are gRPC doubles served from this process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CoordinatorClient, JobState, type Run } from '@alignment/contracts';
import { createClient, unaryCall } from '@alignment/service-kit';
import { freePort, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { FakeKubernetesApi, runTrainerPod } from '../testing/fake-kubernetes-api';
import { GeneratorDouble, JudgeDouble } from '../testing/grpc-service-doubles';
import { makeWorkspace, validSpec, type Workspace } from '../testing/run-fixtures';
import type { JobObject } from './clients/kubernetes';

const root = path.resolve(__dirname, '../../..');
const TSX_MAIN = ['--import', 'tsx', 'services/coordinator/src/main.ts'];
let ws: Workspace;
let generator: GeneratorDouble;
let judge: JudgeDouble;
let api: FakeKubernetesApi;
const spawned: SpawnedProcess[] = [];

beforeAll(async () => {
  ws = makeWorkspace({ rounds: 1, promptsPerRound: 4, evalPrompts: 2 });
  generator = await GeneratorDouble.start({ perItemMs: 5 });
  judge = await JudgeDouble.start({ perItemMs: 2 });
  api = await new FakeKubernetesApi().start();
});

afterAll(async () => {
  for (const child of spawned) await child.stop('SIGKILL');
  await Promise.all([generator.shutdown(), judge.shutdown(), api.stop()]);
  ws.cleanup();
});

function spawnCoordinator(port: number, dataDir: string, extra: Record<string, string> = {}): SpawnedProcess {
  const child = spawnProcess(
    process.execPath,
    TSX_MAIN,
    {
      PORT: String(port),
      DATA_DIR: dataDir,
      GENERATOR_ADDRESS: generator.address,
      JUDGE_ADDRESS: judge.address,
      // Nothing listens there: LEARN must not call a trainer service.
      TRAINER_ADDRESS: '127.0.0.1:1',
      LEARN_EXECUTOR: 'kubernetes',
      K8S_API_URL: api.url,
      K8S_API_TOKEN: 'coordinator-token',
      K8S_NAMESPACE: 'alignment',
      K8S_LEARN_IMAGE: 'alignment/trainer:0.1.0',
      K8S_LEARN_POLL_MS: '50',
      LOG_LEVEL: 'info',
      ...extra,
    },
    root,
  );
  spawned.push(child);
  return child;
}

async function serving(child: SpawnedProcess, port: number): Promise<CoordinatorClient> {
  const client = createClient(CoordinatorClient, `127.0.0.1:${port}`, { defaultDeadlineMs: 5_000 });
  await waitFor(
    async () => {
      if (child.child.exitCode !== null) throw new Error(`the coordinator exited: ${child.output()}`);
      return unaryCall(client, client.listRuns, { pageSize: 1, pageToken: '' }).then(() => true);
    },
    60_000,
    'the coordinator to serve',
  );
  return client;
}

it('re-attaches to its running LEARN Job after kill -9 instead of creating a second one', async () => {
  const port = await freePort();
  const dataDir = path.join(ws.root, 'data');
  // Round 0's Job stays running until the test completes it; later Jobs complete at once.
  let held: JobObject | undefined;
  api.onJobCreated = (job) => {
    if (!held) held = job;
    else setTimeout(() => void runTrainerPod(api, job), 20);
  };
  let child = spawnCoordinator(port, dataDir);
  let client = await serving(child, port);
  await unaryCall(client, client.startRun, { runId: 'k8s', spec: validSpec(ws) });
  await waitFor(async () => held !== undefined, 60_000, 'round 0 LEARN to create its Job');
  const reads = () => api.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/jobs/${held!.metadata.name}`)).length;
  await waitFor(async () => reads() >= 2, 10_000, 'the Job to be followed');
  client.close();
  await child.stop('SIGKILL');

  child = spawnCoordinator(port, dataDir);
  client = await serving(child, port);
  const before = reads();
  await waitFor(async () => reads() > before + 1, 60_000, 'the restarted coordinator to follow the same Job');
  await runTrainerPod(api, held!);
  const run: Run = await waitFor(
    async () => {
      const r = (await unaryCall(client, client.getRun, { runId: 'k8s' })).run!;
      return r.state === JobState.JOB_STATE_RUNNING ? undefined : r;
    },
    60_000,
    'the run to end',
  );
  client.close();
  expect(await child.stop('SIGTERM')).toBe(0);

  expect([run.state, run.error]).toEqual([JobState.JOB_STATE_SUCCEEDED, '']);
  // One Job per LEARN stage (rounds 0 and 1), all with the coordinator's token; none created twice.
  const creates = api.requests.filter((r) => r.method === 'POST');
  const names = creates.map((r) => (r.body as { metadata: { name: string } }).metadata.name);
  expect(names).toHaveLength(2);
  expect(new Set(names).size).toBe(2);
  expect(names[0]).toBe(held!.metadata.name);
  expect(creates.every((r) => r.authorization === 'Bearer coordinator-token')).toBe(true);
  const learn = JSON.parse(fs.readFileSync(path.join(dataDir, 'runs', 'k8s', 'round-0', 'learn', 'stage.json'), 'utf8'));
  expect(learn.outputs['model.onnx'].sha256).toMatch(/^[0-9a-f]{64}$/);
}, 180_000);

it('refuses to start with LEARN_EXECUTOR=kubernetes and no K8S_LEARN_IMAGE, naming it', async () => {
  const child = spawnCoordinator(await freePort(), path.join(ws.root, 'data-bad'), { K8S_LEARN_IMAGE: '' });
  await waitFor(async () => child.child.exitCode !== null, 60_000, 'the coordinator to exit');
  expect(child.child.exitCode).toBe(1);
  expect(child.output()).toContain('coordinator failed to start: LEARN_EXECUTOR=kubernetes needs K8S_LEARN_IMAGE (the trainer image)');
}, 90_000);
