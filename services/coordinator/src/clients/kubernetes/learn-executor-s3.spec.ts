import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileUri, publishArtifact } from '@alignment/artifacts';
import { JobSpec, JobState, PreferenceLoss, type Progress } from '@alignment/contracts';
import { createLogger } from '@alignment/service-kit';
import { useMotoInSpec } from '../../../../../libs/artifacts/testing/moto-server';
import { FakeKubernetesApi } from '../../../testing/fake-kubernetes-api';
import { fakeTrainOutputs } from '../../../testing/fake-service-outputs';
import { StageFailedError, verifyOutput, type LearnCallContext } from '../../run';
import { KubernetesApi, type JobObject } from './api-client';
import { learnJobName, type LearnJobTemplate } from './job-manifest';
import { KubernetesLearnExecutor } from './learn-executor';

// LEARN as Kubernetes Jobs with MODEL_STORE_URI: the Job trains into the attempt's staging directory on the data
// volume and publishes to the s3:// output_uri (the job CLI's --publish-uri), with the object store's settings from
// a Secret. The API server is a fake on loopback; the object store is a moto server, to which the test's "pod"
// publishes the way the CLI does, so that the outputs the executor returns are verified against the bucket.

jest.setTimeout(120_000);
const NS = 'alignment';
const BUCKET = 'models';
const STORE = `s3://${BUCKET}/team`;
const logger = createLogger('k8s-learn-s3-test');
useMotoInSpec([BUCKET]);
let api: FakeKubernetesApi;
let dataDir: string;

beforeEach(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-learn-s3-'));
  api = await new FakeKubernetesApi().start();
});
afterEach(async () => {
  await api.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function executor(over: Partial<LearnJobTemplate> = {}): KubernetesLearnExecutor {
  const template: LearnJobTemplate = {
    image: 'alignment/trainer:0.1.0', nodes: 1, gpusPerNode: 1, nodeSelector: {}, tolerations: [], dataClaim: 'alignment-data', dataMountPath: dataDir,
    serviceAccount: 'trainer', resources: { cpuRequest: '1', cpuLimit: '2', memoryRequest: '1Gi', memoryLimit: '2Gi' }, shmSize: '1Gi',
    ttlSecondsAfterFinished: 60, backoffLimit: 0, rendezvousPort: 29500, env: { S3_ARTIFACT_ROOTS: STORE }, objectStoreSecret: 'object-store', ...over,
  };
  return new KubernetesLearnExecutor({
    api: new KubernetesApi({ baseUrl: api.url, namespace: NS, timeoutMs: 5000 }),
    template, pollMs: 10, stuckGraceMs: 200, stageDeadlineMs: 60_000, retry: { attempts: 2, initialBackoffMs: 5, maxBackoffMs: 5 }, logger,
  });
}

const stageDir = () => path.join(dataDir, 'runs', 'run-1', 'round-0', 'learn');
const outputUri = (attempt: number) => `${STORE}/run-1/round-0/learn/attempt-${attempt}`;

function jobSpec(attempt = 1): JobSpec {
  return JobSpec.fromPartial({
    kind: { $case: 'preference', value: { init: { uri: `${STORE}/base/checkpoint`, sha256: 'ab'.repeat(32) }, pairs: { uri: fileUri(path.join(dataDir, 'pairs.jsonl')), sha256: 'cd'.repeat(32) }, loss: PreferenceLoss.PREFERENCE_LOSS_DPO, beta: 0.1 } },
    hparams: { learningRate: 5e-7, batchSize: 8, epochs: 1, seed: 7 },
    outputUri: outputUri(attempt),
  });
}

function context(attempt = 1, controller = new AbortController()): LearnCallContext & { progress: Progress[] } {
  const progress: Progress[] = [];
  return { signal: controller.signal, onProgress: (p) => progress.push(p), label: 'round 0 LEARN', stagingDir: path.join(stageDir(), `attempt-${attempt}`), progress };
}

/**
 * Plays the Job's pod as the job CLI runs it with --publish-uri (trainer jobs/cli.py): trains into --output, publishes
 * each output under the URI, and writes result.json with the local paths and the s3:// locations.
 */
async function podPublishes(job: JobObject, publish = true): Promise<void> {
  const command = (job.spec as { template: { spec: { containers: { command: string[] }[] } } }).template.spec.containers[0].command;
  const arg = (flag: string) => command[command.indexOf(flag) + 1];
  const spec = JobSpec.fromJSON(JSON.parse(fs.readFileSync(arg('--spec'), 'utf8')));
  const out = arg('--output');
  const uri = arg('--publish-uri');
  const { outputs, metrics } = await fakeTrainOutputs({ ...spec, outputUri: fileUri(out) });
  const roles = { hf_checkpoint: 'checkpoint', onnx: 'onnx', manifest: 'manifest.json', metrics: 'metrics.jsonl' } as const;
  const refs = { hf_checkpoint: outputs.model?.hfCheckpoint, onnx: outputs.model?.onnx, manifest: outputs.manifest, metrics: outputs.metrics };
  const result: Record<string, unknown> = {};
  for (const [role, rel] of Object.entries(roles)) {
    const ref = refs[role as keyof typeof refs]!;
    const published = publish ? await publishArtifact(path.join(out, rel), `${uri}/${rel}`, 'test') : undefined;
    result[role] = { path: path.join(out, rel), sha256: published?.sha256 ?? ref.sha256, size_bytes: ref.sizeBytes, ...(publish ? { uri: `${uri}/${rel}` } : {}) };
  }
  const work = arg('--work-dir');
  fs.writeFileSync(path.join(work, 'progress.json'), JSON.stringify({ step: 4, total_steps: 4, loss: 0.5, tokens_per_second: 50, eta_seconds: 0, time: 0 }));
  fs.writeFileSync(path.join(work, 'result.json'), JSON.stringify({ state: 'SUCCEEDED', total_steps: 4, final_metrics: metrics, outputs: result }));
  api.finish(NS, job.metadata.name, 'Complete');
}

test('the Job trains into the staging directory, publishes to the s3:// output_uri with the Secret, and the outputs are the published ones', async () => {
  const jobId = 'run-1-n-r0-learn-a1';
  api.onJobCreated = (job) => setTimeout(() => void podPublishes(job), 20);
  const ctx = context();
  const job = await executor().train(jobId, jobSpec(), ctx);

  expect(job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
  expect(job.outputs?.model?.hfCheckpoint?.uri).toBe(`${outputUri(1)}/checkpoint`);
  expect(job.outputs?.model?.onnx?.uri).toBe(`${outputUri(1)}/onnx`);
  expect(job.outputs?.manifest?.uri).toBe(`${outputUri(1)}/manifest.json`);
  expect(job.spec?.outputUri).toBe(outputUri(1));
  // What the LEARN stage records is in the bucket with those digests (stage.json verification, stage-manifest.ts).
  expect(await verifyOutput({ ...job.outputs!.model!.hfCheckpoint!, kind: 'dir' })).toBeUndefined();
  expect(await verifyOutput({ ...job.outputs!.model!.onnx!, kind: 'dir' })).toBeUndefined();
  expect(await verifyOutput({ ...job.outputs!.metrics!, kind: 'file' })).toBeUndefined();
  expect(ctx.progress.at(-1)).toEqual(expect.objectContaining({ done: 4, total: 4, unit: 'steps' }));
  // The weights are stored once: the staged copies the Job trained into are gone, its small files stay.
  const staging = path.join(stageDir(), 'attempt-1');
  expect(fs.readdirSync(staging).sort()).toEqual(['manifest.json', 'metrics.jsonl']);
  expect(fs.existsSync(path.join(`${staging}.work`, 'result.json'))).toBe(true);

  const [create] = api.writes();
  const manifest = create.body as any;
  const container = manifest.spec.template.spec.containers[0];
  expect(container.command.slice(container.command.indexOf('alignment_trainer.cli'))).toEqual([
    'alignment_trainer.cli', 'run', '--spec', path.join(`${staging}.work`, 'job-spec.json'), '--output', staging, '--work-dir', `${staging}.work`, '--publish-uri', outputUri(1),
  ]);
  // The S3 settings come from the Secret by reference; no credential is a literal in the Job.
  expect(container.envFrom).toEqual([{ secretRef: { name: 'object-store' } }]);
  expect(container.env.map((e: { name: string }) => e.name)).toEqual(['S3_ARTIFACT_ROOTS', 'MACHINE_RANK']);
  expect(JSON.stringify(manifest)).not.toMatch(/AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|S3_ENDPOINT_URL/);
  // The JobSpec the pods read keeps the s3:// output_uri.
  expect(JobSpec.fromJSON(JSON.parse(fs.readFileSync(path.join(`${staging}.work`, 'job-spec.json'), 'utf8'))).outputUri).toBe(outputUri(1));
  expect(manifest.metadata.labels['alignment.dev/learn-stage']).toMatch(/^[0-9a-f]{20}$/);
});

test('a restarted coordinator re-attaches to the Job, and after its TTL the result on the data volume still answers', async () => {
  const jobId = 'run-1-n-r0-learn-a2';
  const first = new AbortController();
  const before = executor().train(jobId, jobSpec(2), context(2, first));
  for (let i = 0; i < 500 && !api.jobs.has(`${NS}/${learnJobName(jobId)}`); i++) await new Promise((r) => setTimeout(r, 10));
  first.abort('shutdown');
  await expect(before).rejects.toThrow();

  const job = api.jobs.get(`${NS}/${learnJobName(jobId)}`)!;
  setTimeout(() => void podPublishes(job), 30);
  const after = await executor().train(jobId, jobSpec(2), context(2));
  expect(after.outputs?.model?.onnx?.uri).toBe(`${outputUri(2)}/onnx`);
  expect(api.writes().filter((r) => r.method === 'POST')).toHaveLength(1);

  api.jobs.clear();
  const again = await executor().train(jobId, jobSpec(2), context(2));
  expect(again.outputs?.model?.hfCheckpoint).toEqual(after.outputs?.model?.hfCheckpoint);
  expect(api.writes().filter((r) => r.method === 'POST')).toHaveLength(1);
});

test('a Job that succeeded without publishing (a trainer image without --publish-uri) fails the stage', async () => {
  api.onJobCreated = (job) => setTimeout(() => void podPublishes(job, false), 20);
  await expect(executor().train('run-1-n-r0-learn-a3', jobSpec(3), context(3))).rejects.toThrow(
    new StageFailedError(`trainer job run-1-n-r0-learn-a3 (Kubernetes Job ${learnJobName('run-1-n-r0-learn-a3')}) succeeded without publishing hf_checkpoint, onnx, manifest, metrics to ${outputUri(3)}`),
  );
});

test('without a Secret for the Jobs, or without a staging directory, the stage fails naming what is missing, and no Job is created', async () => {
  await expect(executor({ objectStoreSecret: undefined }).train('j-a1', jobSpec(), context())).rejects.toThrow(
    `trainer job j-a1: output_uri ${outputUri(1)} is in object storage, and the LEARN Jobs have no credentials for it: set K8S_LEARN_S3_SECRET to the Secret that holds them`,
  );
  await expect(executor().train('j-a1', jobSpec(), { ...context(), stagingDir: undefined })).rejects.toThrow(
    `trainer job j-a1: output_uri ${outputUri(1)} is in object storage, and no staging directory on the data volume was given to train into`,
  );
  expect(api.writes()).toEqual([]);
});
