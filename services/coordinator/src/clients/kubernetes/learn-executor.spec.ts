import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileUri, toLocalPath } from '@alignment/artifacts';
import { JobSpec, JobState, PreferenceLoss, type Progress } from '@alignment/contracts';
import { createLogger } from '@alignment/service-kit';
import { FakeKubernetesApi } from '../../../testing/fake-kubernetes-api';
import { fakeTrainOutputs } from '../../../testing/fake-service-outputs';
import { ServiceUnavailableError, StageAbortedError, StageFailedError, type CallContext } from '../../run';
import { KubernetesApi } from './api-client';
import { JOB_ID_ANNOTATION, learnJobName, type LearnJobTemplate } from './job-manifest';
import { KubernetesLearnExecutor, learnJobPaths } from './learn-executor';

// The LEARN-as-Jobs executor against a fake Kubernetes API server on loopback (the only stand-in: this machine has
// no cluster and no GPU). The test plays the Job controller and the trainer pod: it writes the files the trainer's
// job CLI writes (outputs, progress.json, result.json) and flips the Job's status.

const NS = 'alignment';
const logger = createLogger('k8s-learn-test');
let api: FakeKubernetesApi;
let dataDir: string;

const template = (over: Partial<LearnJobTemplate> = {}): LearnJobTemplate => ({
  image: 'registry.example/alignment/trainer:0.1.0',
  nodes: 1,
  gpusPerNode: 8,
  nodeSelector: { 'nvidia.com/gpu.present': 'true' },
  tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
  dataClaim: 'alignment-data',
  dataMountPath: dataDir,
  serviceAccount: 'trainer',
  accelerateConfig: '/app/accelerate/fsdp.yaml',
  resources: { cpuRequest: '16', cpuLimit: '32', memoryRequest: '256Gi', memoryLimit: '512Gi' },
  shmSize: '32Gi',
  ttlSecondsAfterFinished: 600,
  backoffLimit: 0,
  rendezvousPort: 29500,
  env: { DRO_SOLVER_ADDRESS: 'dro-solver:50054' },
  ...over,
});

function executor(over: Partial<LearnJobTemplate> = {}, attempts = 3): KubernetesLearnExecutor {
  return new KubernetesLearnExecutor({
    api: new KubernetesApi({ baseUrl: api.url, token: () => 'sa-token', namespace: NS, timeoutMs: 5000 }),
    template: template(over),
    pollMs: 20,
    stuckGraceMs: 200,
    stageDeadlineMs: 60_000,
    retry: { attempts, initialBackoffMs: 5, maxBackoffMs: 20 },
    checkpointEverySteps: 50,
    logger,
  });
}

function jobSpec(attempt = 0): JobSpec {
  const dir = path.join(dataDir, 'runs', 'r1', 'round-0', 'learn');
  return JobSpec.fromPartial({
    kind: { $case: 'preference', value: { init: { uri: fileUri(path.join(dataDir, 'models', 'base')), sha256: 'ab'.repeat(32) }, pairs: { uri: fileUri(path.join(dataDir, 'pairs.jsonl')), sha256: 'cd'.repeat(32) }, loss: PreferenceLoss.PREFERENCE_LOSS_DPO, beta: 0.1 } },
    hparams: { learningRate: 5e-7, batchSize: 8, epochs: 1, seed: 7 },
    outputUri: fileUri(path.join(dir, `attempt-${attempt}`)),
  });
}

function context(controller = new AbortController()): CallContext & { progress: Progress[] } {
  const progress: Progress[] = [];
  return { signal: controller.signal, onProgress: (p) => progress.push(p), label: 'round 0 LEARN', progress };
}

/** What the trainer's job CLI leaves behind on success (jobs/cli.py): outputs, progress.json, result.json. */
async function trainerSucceeds(spec: JobSpec): Promise<void> {
  const { outputs, metrics } = await fakeTrainOutputs(spec);
  const work = learnJobPaths(spec, 'x').workDir;
  fs.mkdirSync(work, { recursive: true });
  const info = (a?: { uri: string; sha256: string; sizeBytes: number }) => (a ? { path: toLocalPath(a.uri), sha256: a.sha256, size_bytes: a.sizeBytes } : null);
  fs.writeFileSync(path.join(work, 'progress.json'), JSON.stringify({ step: 12, total_steps: 12, loss: 0.5, tokens_per_second: 900, eta_seconds: 0, time: 1 }));
  fs.writeFileSync(path.join(work, 'result.json'), JSON.stringify({
    state: 'SUCCEEDED', total_steps: 12, final_metrics: metrics,
    outputs: { hf_checkpoint: info(outputs.model?.hfCheckpoint), onnx: info(outputs.model?.onnx), manifest: info(outputs.manifest), metrics: info(outputs.metrics) },
  }));
}

/** Resolves once the Job exists on the fake server. */
async function created(name: string): Promise<void> {
  for (let i = 0; i < 500 && !api.jobs.has(`${NS}/${name}`); i++) await new Promise((r) => setTimeout(r, 10));
  if (!api.jobs.has(`${NS}/${name}`)) throw new Error(`Job ${name} was never created`);
}

beforeEach(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-learn-'));
  api = await new FakeKubernetesApi().start();
});

afterEach(async () => {
  await api.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a LEARN stage creates one Indexed Job on GPU nodes, follows it to Complete, and returns the trainer outputs', async () => {
  const jobId = 'run-1-abc-r0-learn-a0';
  const spec = jobSpec();
  const name = learnJobName(jobId);
  api.onJobCreated = () => {
    setTimeout(() => void trainerSucceeds(spec).then(() => api.finish(NS, name, 'Complete')), 50);
  };
  const ctx = context();
  const job = await executor().train(jobId, spec, ctx);

  // The trainer's outputs, as the gRPC trainer reports them.
  expect(job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
  expect(job.jobId).toBe(jobId);
  const out = toLocalPath(spec.outputUri);
  expect(job.outputs?.model?.hfCheckpoint?.uri).toBe(fileUri(path.join(out, 'checkpoint')));
  expect(job.outputs?.model?.onnx?.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(job.outputs?.metrics?.uri).toBe(fileUri(path.join(out, 'metrics.jsonl')));
  expect(job.metrics['rewards/margins']).toBeCloseTo(0.1);
  expect(ctx.progress.at(-1)).toEqual(expect.objectContaining({ done: 12, total: 12, unit: 'steps', tokensPerSecond: 900 }));

  // One create, with the bearer token, and the Job the way the cluster needs it.
  const writes = api.writes();
  expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /apis/batch/v1/namespaces/${NS}/jobs`]);
  expect(writes[0].authorization).toBe('Bearer sa-token');
  const manifest = writes[0].body as any;
  expect(name).toMatch(/^learn-run-1-abc-r0-learn-a0-[0-9a-f]{10}$/);
  expect(manifest.metadata).toEqual(expect.objectContaining({ name, namespace: NS, annotations: { [JOB_ID_ANNOTATION]: jobId } }));
  expect(manifest.metadata.labels).toEqual(expect.objectContaining({ app: 'learn-job', 'app.kubernetes.io/part-of': 'alignment', 'alignment.dev/learn-job': name }));
  expect(manifest.spec).toEqual(expect.objectContaining({ completionMode: 'Indexed', completions: 1, parallelism: 1, backoffLimit: 0, ttlSecondsAfterFinished: 600 }));
  expect(manifest.spec.podFailurePolicy.rules).toEqual([
    { action: 'FailJob', onExitCodes: { containerName: 'trainer', operator: 'In', values: [1, 2] } },
    { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
  ]);
  const pod = manifest.spec.template.spec;
  expect(pod.restartPolicy).toBe('Never');
  expect(pod.automountServiceAccountToken).toBe(false);
  expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
  expect(pod.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
  const [container] = pod.containers;
  expect(container.image).toBe('registry.example/alignment/trainer:0.1.0');
  expect(container.resources.limits).toEqual({ cpu: '32', memory: '512Gi', 'nvidia.com/gpu': '8' });
  const paths = learnJobPaths(spec, jobId);
  expect(container.command).toEqual([
    'python', '-m', 'accelerate.commands.launch', '--config_file', '/app/accelerate/fsdp.yaml', '--num_machines', '1', '--num_processes', '8',
    '-m', 'alignment_trainer.cli', 'run', '--spec', paths.spec, '--output', out, '--work-dir', `${out}.work`,
  ]);
  expect(container.env).toEqual(expect.arrayContaining([{ name: 'DRO_SOLVER_ADDRESS', value: 'dro-solver:50054' }]));
  expect(pod.volumes).toEqual(expect.arrayContaining([{ name: 'data', persistentVolumeClaim: { claimName: 'alignment-data' } }]));
  expect(container.volumeMounts).toEqual(expect.arrayContaining([{ name: 'data', mountPath: dataDir }]));

  // The spec file the pods read: the JobSpec in proto JSON, with the coordinator's checkpoint interval.
  const written = JobSpec.fromJSON(JSON.parse(fs.readFileSync(paths.spec, 'utf8')));
  expect(written.outputUri).toBe(spec.outputUri);
  expect(written.hparams?.checkpointEverySteps).toBe(50);
  expect(written.kind?.$case).toBe('preference');
});

test('several nodes: parallelism = completions = nodes, a rank per pod, and a headless Service owned by the Job', async () => {
  const jobId = 'run-2-x-r1-learn-a0';
  const name = learnJobName(jobId);
  const spec = jobSpec();
  api.onJobCreated = () => setTimeout(() => void trainerSucceeds(spec).then(() => api.finish(NS, name, 'Complete')), 50);
  await executor({ nodes: 4 }).train(jobId, spec, context());
  const [job, service] = api.writes();
  const body = job.body as any;
  expect(body.spec).toEqual(expect.objectContaining({ completionMode: 'Indexed', completions: 4, parallelism: 4 }));
  expect(body.spec.template.spec.subdomain).toBe(name);
  const command: string[] = body.spec.template.spec.containers[0].command;
  expect(command.join(' ')).toContain(`--num_machines 4 --num_processes 32 --machine_rank $(MACHINE_RANK) --main_process_ip ${name}-0.${name} --main_process_port 29500`);
  expect(body.spec.template.spec.containers[0].env).toEqual(expect.arrayContaining([
    { name: 'MACHINE_RANK', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
  ]));
  expect(service.path).toBe(`/api/v1/namespaces/${NS}/services`);
  const svc = service.body as any;
  expect(svc.spec).toEqual(expect.objectContaining({ clusterIP: 'None', selector: { 'alignment.dev/learn-job': name } }));
  expect(svc.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Job', name, uid: api.jobs.get(`${NS}/${name}`)!.metadata.uid })]);
});

test('a failed pod fails the stage with the pod\'s reason and message and the trainer\'s error', async () => {
  const jobId = 'run-3-x-r0-learn-a0';
  const name = learnJobName(jobId);
  const spec = jobSpec();
  api.onJobCreated = () =>
    setTimeout(() => {
      const work = learnJobPaths(spec, jobId).workDir;
      fs.writeFileSync(path.join(work, 'result.json'), JSON.stringify({ state: 'FAILED', error: 'OutOfMemoryError: CUDA out of memory' }));
      api.pods.push({
        metadata: { name: `${name}-0-abcde`, labels: { 'alignment.dev/learn-job': name } },
        status: { phase: 'Failed', containerStatuses: [{ name: 'trainer', state: { terminated: { exitCode: 1, reason: 'Error', message: 'job failed' } } }] },
      });
      api.finish(NS, name, 'Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    }, 50);
  const error = await executor().train(jobId, spec, context()).catch((e) => e);
  expect(error).toBeInstanceOf(StageFailedError);
  expect(error.interrupted).toBe(false);
  expect(error.message).toBe(
    `trainer job ${jobId} (Kubernetes Job ${name}) failed: trainer: OutOfMemoryError: CUDA out of memory; ` +
      'Job BackoffLimitExceeded: Job has reached the specified backoff limit; ' +
      `pod ${name}-0-abcde: container trainer exited 1 (Error): job failed`,
  );
  expect(api.requests.some((r) => r.method === 'GET' && r.path === `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(`alignment.dev/learn-job=${name}`)}`)).toBe(true);
});

test('an evicted pod (no container exit) still names the pod\'s reason', async () => {
  const jobId = 'run-3b-x-r0-learn-a0';
  const name = learnJobName(jobId);
  api.onJobCreated = () =>
    setTimeout(() => {
      api.pods.push({ metadata: { name: `${name}-0-zz`, labels: { 'alignment.dev/learn-job': name } }, status: { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage.' } });
      api.finish(NS, name, 'Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    }, 50);
  await expect(executor().train(jobId, jobSpec(), context())).rejects.toThrow(`pod ${name}-0-zz: Evicted: The node was low on resource: ephemeral-storage.`);
});

test('cancelling the run deletes the Job (and its pods); a coordinator shutdown leaves it running', async () => {
  const jobId = 'run-4-x-r0-learn-a0';
  const name = learnJobName(jobId);
  const cancel = new AbortController();
  const pending = executor().train(jobId, jobSpec(), context(cancel));
  await created(name);
  cancel.abort('cancelled');
  await expect(pending).rejects.toEqual(new StageAbortedError('cancelled'));
  const del = api.writes().find((r) => r.method === 'DELETE')!;
  expect(del.path).toBe(`/apis/batch/v1/namespaces/${NS}/jobs/${name}`);
  expect(del.body).toEqual(expect.objectContaining({ propagationPolicy: 'Background' }));
  expect(api.jobs.has(`${NS}/${name}`)).toBe(false);

  const other = 'run-5-x-r0-learn-a0';
  const shutdown = new AbortController();
  const running = executor().train(other, jobSpec(1), context(shutdown));
  await created(learnJobName(other));
  shutdown.abort('shutdown');
  await expect(running).rejects.toEqual(new StageAbortedError('shutdown'));
  expect(api.jobs.has(`${NS}/${learnJobName(other)}`)).toBe(true);
  expect(api.writes().filter((r) => r.method === 'DELETE')).toHaveLength(1);
});

test('a restarted coordinator re-attaches to the running Job instead of creating a second one', async () => {
  const jobId = 'run-6-x-r0-learn-a0';
  const name = learnJobName(jobId);
  const spec = jobSpec();
  const first = new AbortController();
  const before = executor().train(jobId, spec, context(first));
  await created(name);
  first.abort('shutdown');
  await expect(before).rejects.toBeInstanceOf(StageAbortedError);

  const after = executor().train(jobId, spec, context());
  setTimeout(() => void trainerSucceeds(spec).then(() => api.finish(NS, name, 'Complete')), 50);
  expect((await after).state).toBe(JobState.JOB_STATE_SUCCEEDED);
  expect(api.writes().filter((r) => r.method === 'POST')).toHaveLength(1);

  // After the Job's TTL removed it, the trainer's result.json on the data volume still answers: no new Job.
  api.jobs.clear();
  expect((await executor().train(jobId, spec, context())).outputs?.model?.onnx?.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(api.writes().filter((r) => r.method === 'POST')).toHaveLength(1);
});

test('a create that answers 409 (made meanwhile) attaches to that Job; a Job of that name that is not ours fails', async () => {
  const jobId = 'run-7-x-r0-learn-a0';
  const name = learnJobName(jobId);
  const spec = jobSpec();
  // The create went through but its answer was lost: the retry finds the Job already there.
  api.jobs.set(`${NS}/${name}`, { apiVersion: 'batch/v1', kind: 'Job', metadata: { name, annotations: { [JOB_ID_ANNOTATION]: jobId } }, spec: {}, status: {} });
  api.inject('GET', `/apis/batch/v1/namespaces/${NS}/jobs/${name}`, 404, 'NotFound', 'not found');
  setTimeout(() => void trainerSucceeds(spec).then(() => api.finish(NS, name, 'Complete')), 50);
  expect((await executor().train(jobId, spec, context())).state).toBe(JobState.JOB_STATE_SUCCEEDED);

  const foreign = 'run-8-x-r0-learn-a0';
  const foreignName = learnJobName(foreign);
  api.jobs.set(`${NS}/${foreignName}`, { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: foreignName, annotations: { [JOB_ID_ANNOTATION]: 'someone-else' } }, spec: {}, status: {} });
  await expect(executor().train(foreign, jobSpec(1), context())).rejects.toThrow(
    `trainer job ${foreign}: Kubernetes Job ${foreignName} in namespace ${NS} belongs to job someone-else; delete it or use another namespace`,
  );
});

test('API errors: 403 names the missing permission, 422 the settings, persistent 500s the API server; a single 500 is retried', async () => {
  const jobs = `/apis/batch/v1/namespaces/${NS}/jobs`;
  api.inject('POST', jobs, 403, 'Forbidden', 'jobs.batch is forbidden: User "system:serviceaccount:alignment:coordinator" cannot create resource "jobs"');
  const forbidden = await executor().train('run-9-x-r0-learn-a0', jobSpec(), context()).catch((e) => e);
  expect(forbidden).toBeInstanceOf(StageFailedError);
  expect(forbidden.message).toContain('Kubernetes API: create Job learn-run-9-x-r0-learn-a0-');
  expect(forbidden.message).toContain('answered 403 Forbidden: jobs.batch is forbidden: User "system:serviceaccount:alignment:coordinator" cannot create resource "jobs"');
  expect(forbidden.message).toContain(`needs the Role of deploy/k8s/components/learn-as-jobs in namespace ${NS}`);

  api.inject('POST', jobs, 422, 'Invalid', 'Job.batch "x" is invalid: spec.template.spec.containers[0].resources.limits: Invalid value');
  await expect(executor().train('run-10-x-r0-learn-a0', jobSpec(), context())).rejects.toThrow(/answered 422 Invalid: .*resources\.limits.*check the K8S_LEARN_\* settings/);

  api.inject('GET', jobs, 500, 'InternalError', 'etcdserver: request timed out', 3);
  const down = await executor({}, 3).train('run-11-x-r0-learn-a0', jobSpec(), context()).catch((e) => e);
  expect(down).toBeInstanceOf(ServiceUnavailableError);
  expect(down.message).toBe(`Kubernetes API at ${api.url} unavailable after 3 attempts: Kubernetes API: get Job ${learnJobName('run-11-x-r0-learn-a0')} answered 500 InternalError: etcdserver: request timed out`);
  expect(api.writes()).toHaveLength(2); // the 403 and 422 creates above: nothing was created for this stage

  const jobId = 'run-12-x-r0-learn-a0';
  const spec = jobSpec();
  api.inject('POST', jobs, 500, 'InternalError', 'transient');
  api.onJobCreated = () => setTimeout(() => void trainerSucceeds(spec).then(() => api.finish(NS, learnJobName(jobId), 'Complete')), 30);
  expect((await executor().train(jobId, spec, context())).state).toBe(JobState.JOB_STATE_SUCCEEDED);
  // 403 and 422 above; here the 500 and its retry, which created the Job.
  expect(api.writes().filter((r) => r.method === 'POST').map((r) => (r.body as any).metadata.name)).toEqual([
    learnJobName('run-9-x-r0-learn-a0'), learnJobName('run-10-x-r0-learn-a0'), learnJobName(jobId), learnJobName(jobId),
  ]);
  expect(api.jobs.has(`${NS}/${learnJobName(jobId)}`)).toBe(true);
});

test('an unreachable API server fails the stage as unavailable, naming the address', async () => {
  const dead = new KubernetesLearnExecutor({
    api: new KubernetesApi({ baseUrl: 'http://127.0.0.1:1', namespace: NS, timeoutMs: 1000 }),
    template: template(),
    pollMs: 20,
    stuckGraceMs: 200,
    stageDeadlineMs: 60_000,
    retry: { attempts: 2, initialBackoffMs: 5, maxBackoffMs: 5 },
    logger,
  });
  await expect(dead.train('run-13-x-r0-learn-a0', jobSpec(), context())).rejects.toThrow(
    /^Kubernetes API at http:\/\/127\.0\.0\.1:1 unavailable after 2 attempts: Kubernetes API: get Job learn-run-13-x-r0-learn-a0-[0-9a-f]{10}: http:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/,
  );
});

test('a pod that cannot pull its image fails the stage after the grace period, and its Job is deleted', async () => {
  const jobId = 'run-14-x-r0-learn-a0';
  const name = learnJobName(jobId);
  const pod = { metadata: { name: `${name}-0-q`, labels: { 'alignment.dev/learn-job': name } }, status: { phase: 'Pending', containerStatuses: [{ name: 'trainer', state: { waiting: { reason: 'ContainerCreating' } } }] } };
  api.onJobCreated = () => api.pods.push(pod);
  const started = Date.now();
  const pending = executor().train(jobId, jobSpec(), context());
  // Creating containers is progress: no failure while it lasts.
  await new Promise((r) => setTimeout(r, 400));
  expect(api.jobs.has(`${NS}/${name}`)).toBe(true);
  pod.status.containerStatuses[0].state = { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "registry.example/alignment/trainer:0.1.0"' } } as any;
  const error = await pending.catch((e) => e);
  expect(error).toBeInstanceOf(StageFailedError);
  expect(error.message).toBe(
    `trainer job ${jobId} (Kubernetes Job ${name}) could not start, and was deleted: pod ${name}-0-q: container trainer ImagePullBackOff: Back-off pulling image "registry.example/alignment/trainer:0.1.0"`,
  );
  expect(Date.now() - started).toBeGreaterThanOrEqual(400 + 200);
  expect(api.writes().map((r) => r.method)).toEqual(['POST', 'DELETE']);
  expect(api.jobs.has(`${NS}/${name}`)).toBe(false);
});

test('a run cancelled while the API server is failing (between retries) still deletes its Job', async () => {
  const jobId = 'run-15-x-r0-learn-a0';
  const name = learnJobName(jobId);
  const cancel = new AbortController();
  api.onJobCreated = () => api.inject('GET', `/apis/batch/v1/namespaces/${NS}/jobs/${name}`, 503, 'ServiceUnavailable', 'apiserver is shutting down', 1000);
  const pending = executor({}, 1000).train(jobId, jobSpec(), context(cancel));
  await created(name);
  await waitForRequests(() => api.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/jobs/${name}`)).length >= 3);
  cancel.abort('cancelled');
  await expect(pending).rejects.toEqual(new StageAbortedError('cancelled'));
  expect(api.writes().map((r) => `${r.method} ${r.path}`)).toEqual([`POST /apis/batch/v1/namespaces/${NS}/jobs`, `DELETE /apis/batch/v1/namespaces/${NS}/jobs/${name}`]);
});

async function waitForRequests(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!done()) throw new Error('the requests never came');
}

test("a new attempt deletes an earlier attempt's Job that still runs, not finished ones nor other stages'", async () => {
  const a0 = 'run-16-x-r0-learn-a0';
  const a1 = 'run-16-x-r0-learn-a1';
  const shutdown = new AbortController();
  const first = executor().train(a0, jobSpec(0), context(shutdown));
  await created(learnJobName(a0));
  shutdown.abort('shutdown');
  await expect(first).rejects.toBeInstanceOf(StageAbortedError);
  // Another stage's running Job (another output directory) and a finished earlier attempt of this one.
  const otherSpec = JobSpec.fromPartial({ ...jobSpec(0), outputUri: fileUri(path.join(dataDir, 'runs', 'r1', 'round-1', 'learn', 'attempt-0')) });
  const stopOther = new AbortController();
  const other = executor().train('run-16-x-r1-learn-a0', otherSpec, context(stopOther));
  await created(learnJobName('run-16-x-r1-learn-a0'));

  const spec = jobSpec(1);
  api.onJobCreated = (job) => {
    if (job.metadata.name === learnJobName(a1)) setTimeout(() => void trainerSucceeds(spec).then(() => api.finish(NS, job.metadata.name, 'Complete')), 30);
  };
  expect((await executor().train(a1, spec, context())).state).toBe(JobState.JOB_STATE_SUCCEEDED);
  const writes = api.writes().map((r) => `${r.method} ${r.path.split('/').pop()}`);
  expect(writes).toEqual(['POST jobs', 'POST jobs', `DELETE ${learnJobName(a0)}`, 'POST jobs']);
  expect(api.jobs.has(`${NS}/${learnJobName('run-16-x-r1-learn-a0')}`)).toBe(true);
  stopOther.abort('shutdown');
  await expect(other).rejects.toBeInstanceOf(StageAbortedError);
});
