// Run.object_store_bytes (run-resources.ts, model-store.ts storedBytes) against a real S3-compatible server (moto) on
// loopback: the sum listed under <MODEL_STORE_URI>/<run>/ page by page, and the figure a run reports after each LEARN,
// after each round's retention and at its end, as a watcher reads it. The trainer is the in-memory one, its models
// published to the bucket as the real trainer publishes them (publishArtifact: objects, then manifest.json).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { listKeys, parseS3Uri, publishArtifact, s3Client } from '@alignment/artifacts';
import { JobState, Stage, type Job, type JobSpec } from '@alignment/contracts';
import { createLogger } from '@alignment/service-kit';
import { useMotoInSpec } from '../../../../libs/artifacts/testing/moto-server';
import { closeHarnesses, harness } from '../../testing/engine-harness';
import { fakeTrainOutputs } from '../../testing/fake-service-outputs';
import { validSpec } from '../../testing/run-fixtures';
import type { CallContext, LearnExecutor } from './executors';
import { storedBytes } from './model-store';
import { RunResources } from './run-resources';

jest.setTimeout(180_000);
const BUCKET = 'run-bytes';
const STORE = `s3://${BUCKET}/models`;
let root: string;
useMotoInSpec([BUCKET]);
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'run-resources-s3-'));
  process.env.S3_CACHE_DIR = path.join(root, 'cache');
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
afterAll(closeHarnesses);

const listedBytes = async (uri: string) => (await listKeys(parseS3Uri(uri))).reduce((total, o) => total + o.size, 0);

/** The in-memory trainer, its checkpoint and export published under the job's s3:// output_uri; records the bytes of each job's prefix. */
class PublishingLearnExecutor implements LearnExecutor {
  readonly published: number[] = [];

  async train(jobId: string, spec: JobSpec, _ctx: CallContext): Promise<Job> {
    const local = fs.mkdtempSync(path.join(root, 'job-'));
    const { outputs, metrics } = await fakeTrainOutputs({ ...spec, outputUri: pathToFileURL(local).href });
    const publish = async (name: string) => {
      const info = await publishArtifact(path.join(local, name), `${spec.outputUri}/${name}`, 'test');
      return { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes };
    };
    const model = { hfCheckpoint: await publish('checkpoint'), onnx: await publish('onnx') };
    this.published.push(await listedBytes(spec.outputUri));
    return { jobId, spec, state: JobState.JOB_STATE_SUCCEEDED, metrics, outputs: { ...outputs, model }, error: '', resumeCount: 0, lastCheckpointStep: 0 };
  }
}

it('storedBytes sums every object under <store>/<run>/, past the 1000 keys of one ListObjectsV2 page, and nothing beside it', async () => {
  const client = s3Client();
  const put = (key: string, bytes: number) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.alloc(bytes, 1) }));
  let expected = 0;
  for (let start = 0; start < 1003; start += 50) {
    const batch = Array.from({ length: Math.min(50, 1003 - start) }, (_, i) => start + i);
    await Promise.all(batch.map((i) => put(`models/paged/round-${i % 3}/learn/attempt-1/part-${i}`, (i % 7) + 1)));
    expected += batch.reduce((total, i) => total + (i % 7) + 1, 0);
  }
  // Beside the run's prefix: another run whose id starts the same, and a key equal to the prefix itself.
  await put('models/paged-2/round-0/learn/attempt-1/weights', 500);
  await put('models/paged', 300);
  expect(expected).toBe(4007); // 143 times 1..7 bytes, then 1 and 2
  expect(await storedBytes(STORE, 'paged')).toBe(expected);
  expect(await storedBytes(STORE, 'absent')).toBe(0);
});

it("a run reports its objects' bytes after each LEARN and after retention; a failed listing keeps the figure", async () => {
  const learn = new PublishingLearnExecutor();
  const h = harness(undefined, undefined, { modelStoreUri: STORE, executors: { learn } });
  await h.engine.startRun({ runId: 'kept', spec: validSpec(h.ws, { keepLastCheckpoints: 1 }) });
  const atLearnEnd: number[] = [];
  const atRoundStart: number[] = [];
  h.engine.watch('kept', (e) => {
    if (e.kind !== 'stage') return;
    const bytes = h.engine.getRun('kept').objectStoreBytes;
    if (e.stage === Stage.STAGE_LEARN && e.state === JobState.JOB_STATE_SUCCEEDED) atLearnEnd.push(bytes);
    if (e.stage === Stage.STAGE_GENERATE && e.state === JobState.JOB_STATE_RUNNING) atRoundStart.push(bytes);
  });
  await h.engine.settled('kept');
  const run = h.engine.getRun('kept');
  expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);

  const [p0, p1, p2] = learn.published;
  expect(learn.published).toHaveLength(3);
  expect(p0).toBeGreaterThan(0);
  // After LEARN t: π_t beside the rounds retention keeps; at the next round's start, round t-1's models are gone.
  expect(atLearnEnd).toEqual([p0, p0 + p1, p1 + p2]);
  expect(atRoundStart).toEqual([p0, p1]);
  // At the end: round 2's models alone, what a listing of the run's prefix sums; disk_bytes does not count them.
  expect(run.objectStoreBytes).toBe(p2);
  expect(await listedBytes(`${STORE}/kept`)).toBe(p2);
  expect(run.diskBytes).toBeGreaterThan(0);

  // A listing that fails (a bucket that does not exist) leaves the figure as it was.
  const logger = createLogger('coordinator-test');
  await new RunResources({ store: h.store, modelStoreUri: 's3://no-such-bucket-here/models', logger }).measure('kept');
  expect(h.engine.getRun('kept').objectStoreBytes).toBe(p2);
});
