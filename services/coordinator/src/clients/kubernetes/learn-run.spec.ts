import * as path from 'node:path';
import { JobState } from '@alignment/contracts';
import { createLogger } from '@alignment/service-kit';
import { artifactShas, closeHarnesses, harness, runToEnd } from '../../../testing/engine-harness';
import { FakeKubernetesApi, runTrainerPod } from '../../../testing/fake-kubernetes-api';
import { makeWorkspace } from '../../../testing/run-fixtures';
import { KubernetesApi } from './api-client';
import { KubernetesLearnExecutor } from './learn-executor';

// A whole run (3 LEARN stages) with LEARN as Kubernetes Jobs: the run engine, the executor and a fake API server
// whose "kubelet" runs the trainer double on the JobSpec file the pods would read. The run's artifacts must be those
// of the same run with the in-memory trainer (what the gRPC trainer path produces in the engine tests).

const NS = 'alignment';
let api: FakeKubernetesApi;

beforeEach(async () => {
  api = await new FakeKubernetesApi().start();
});
afterEach(() => api.stop());
afterAll(closeHarnesses);

test('a run with LEARN as Kubernetes Jobs produces the artifacts of the same run with the trainer service', async () => {
  const ws = makeWorkspace({ rounds: 2 });
  const reference = harness(ws, path.join(ws.root, 'data-grpc'));
  expect((await runToEnd(reference)).state).toBe(JobState.JOB_STATE_SUCCEEDED);

  const dataDir = path.join(ws.root, 'data-k8s');
  api.onJobCreated = (job) => setTimeout(() => void runTrainerPod(api, job).catch((error) => api.finish(NS, job.metadata.name, 'Failed', 'Test', String(error))), 20);
  const learn = new KubernetesLearnExecutor({
    api: new KubernetesApi({ baseUrl: api.url, namespace: NS, timeoutMs: 5000 }),
    template: {
      image: 'alignment/trainer:0.1.0', nodes: 1, gpusPerNode: 1, nodeSelector: {}, tolerations: [], dataClaim: 'alignment-data', dataMountPath: dataDir,
      serviceAccount: 'trainer', resources: { cpuRequest: '1', cpuLimit: '2', memoryRequest: '1Gi', memoryLimit: '2Gi' }, shmSize: '1Gi',
      ttlSecondsAfterFinished: 60, backoffLimit: 0, rendezvousPort: 29500, env: {},
    },
    pollMs: 10,
    stuckGraceMs: 200,
    stageDeadlineMs: 60_000,
    retry: { attempts: 2, initialBackoffMs: 5, maxBackoffMs: 5 },
    logger: createLogger('k8s-learn-run-test'),
  });
  const k8s = harness(ws, dataDir, { executors: { learn } });
  const run = await runToEnd(k8s);
  expect({ state: run.state, error: run.error }).toEqual({ state: JobState.JOB_STATE_SUCCEEDED, error: '' });
  // One Job per LEARN stage (round 0 and two rounds), nothing else written to the cluster.
  expect(api.writes().map((r) => r.method)).toEqual(['POST', 'POST', 'POST']);
  expect(k8s.fakes.learn.calls).toEqual([]);
  const shas = artifactShas(k8s, 'run-1');
  expect(Object.keys(shas).filter((k) => k.includes('model.onnx'))).toHaveLength(3);
  expect(shas).toEqual(artifactShas(reference, 'run-1'));
}, 120_000);
