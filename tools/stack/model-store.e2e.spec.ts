/**
 * End to end, MODEL_STORE_URI (README "Object storage"): `npm run stack` with a moto S3 server on loopback
 * (libs/artifacts/testing/moto-server.ts) and the coordinator's LEARN outputs under s3://<bucket>/models. The micro
 * run of examples/micro-run.json with keep_last_checkpoints 1 succeeds; each round's LEARN model is published under
 * models/<run>/round-<t>/learn/attempt-1 (manifest last), the generator and judge read π_t through their s3:// caches,
 * the run directory holds no model weights, and retention deleted rounds 0 and 1's model objects from the bucket.
 * GetRun's object_store_bytes is what the test's own listing of models/<run>/ sums.
 * A second run finds its first LEARN prefix already published: the trainer refuses it (the run FAILS naming
 * spec.output_uri, the object untouched), and the run started again executes that stage as attempt 2, under a new prefix;
 * keeping every round, it reports more than twice the bytes of the first run, which kept one.
 * A run whose GENERATE, judge and EVALUATE go through an engine (the generator's own /v1 endpoint, as in
 * engine.e2e.spec.ts) loads each round's policy by its s3:// prefix when the spec says the engine reads the store
 * (engine.reads_object_store), and fails the stage that loads one, saying what to set, when it does not.
 *
 * Cost (2 cores): ~15 s to build the micro inputs, ~10 s for moto and the services to start, ~30 s per run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePort, grpcurl } from '@alignment/service-kit/testing';
import { listKeys, parseS3Uri, publishArtifact, publishedSha256 } from '@alignment/artifacts';
import { useMotoInSpec } from '../../libs/artifacts/testing/moto-server';
import { venvPython } from '../testing/tiny-models';
import { ROOT, startStack, stopStack, waitFinished, type Stack } from './harness';

jest.setTimeout(300_000);

const BUCKET = 'model-store-e2e';
const STORE = `s3://${BUCKET}/models`;
const RUN = 'micro-s3';
let dataDir: string;
let stack: Stack | undefined;
let engineUrl: string;

useMotoInSpec([BUCKET]);

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-store-e2e-'));
  // The generator's /v1 endpoint serves π_init from its start, so the micro inputs are built first.
  const built = spawnSync(await venvPython(), ['tools/stack/prepare_micro.py', path.join(dataDir, 'micro')], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`prepare_micro.py failed: ${built.stderr}`);
  const httpPort = await freePort();
  engineUrl = `http://127.0.0.1:${httpPort}/v1`;
  const s3Env = ['S3_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'];
  stack = await startStack(dataDir, {
    ...Object.fromEntries(s3Env.map((name) => [name, process.env[name]])),
    MODEL_STORE_URI: STORE,
    S3_CACHE_DIR: path.join(dataDir, 's3-cache'),
    OPENAI_HTTP_PORT: String(httpPort),
    OPENAI_MODELS: `reference=${path.join(dataDir, 'micro/model/onnx')}`,
    OPENAI_RUNTIME_LOADING: '1',
  });
}, 240_000);

afterAll(async () => {
  if (stack) await stopStack(stack);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

type Output = { uri: string; sha256: string };
const learnManifest = (round: number, runId = RUN): { attempt: number; outputs: Record<string, Output> } =>
  JSON.parse(fs.readFileSync(path.join(dataDir, 'runs', runId, `round-${round}`, 'learn', 'stage.json'), 'utf8'));
const learnOutputs = (round: number) => learnManifest(round).outputs;
const keysUnder = async (uri: string) => (await listKeys(parseS3Uri(uri))).map((o) => o.key);
const bytesUnder = async (uri: string) => (await listKeys(parseS3Uri(uri))).reduce((total, o) => total + o.size, 0);
/** Run.object_store_bytes of the first test's run (keep_last_checkpoints 1). */
let retainedBytes = 0;

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/** StartRun of examples/micro-run.json as `runId` (the same request again resumes it); resolves once it has finished. */
async function microRun(runId: string, keepLast = 0, engine?: Record<string, unknown>) {
  const request = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples/micro-run.json'), 'utf8').split('.data/micro/').join(`${dataDir}/micro/`));
  request.run_id = runId;
  if (keepLast) request.spec.keep_last_checkpoints = keepLast;
  if (engine) request.spec.engine = { base_url: engineUrl, reference_model: 'reference', weights: 'ENGINE_WEIGHTS_ONNX_EXPORT', ...engine };
  const started = await grpcurl(['-plaintext', '-d', '@', stack!.address('coordinator'), 'alignment.v1.Coordinator/StartRun'], JSON.stringify(request));
  if (started.code !== 0) throw new Error(`StartRun failed: ${started.stderr}${started.stdout}`);
  return waitFinished(stack!.address('coordinator'), runId, 240_000);
}

test('a micro run with MODEL_STORE_URI keeps its models in the bucket, none in its run directory', async () => {
  const run = await microRun(RUN, 1);
  expect({ state: run.state, error: run.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: undefined });

  for (const round of [0, 1, 2]) {
    const outputs = learnOutputs(round);
    const prefix = `${STORE}/${RUN}/round-${round}/learn/attempt-1/`;
    for (const name of ['model.hf_checkpoint', 'model.onnx', 'job.manifest', 'job.metrics']) expect(outputs[name].uri.startsWith(prefix)).toBe(true);
    const models = [outputs['model.hf_checkpoint'], outputs['model.onnx']];
    if (round < 2) {
      // keep_last_checkpoints 1: the older rounds' models were deleted from the bucket, manifest and objects.
      for (const model of models) expect(await keysUnder(model.uri)).toEqual([]);
      continue;
    }
    // The final model is published whole: its manifest is the one the stage recorded, and it lists the weights.
    for (const model of models) {
      expect(await publishedSha256(parseS3Uri(model.uri))).toBe(model.sha256);
      expect(await keysUnder(model.uri)).toContain(`${parseS3Uri(model.uri).key}/manifest.json`);
    }
    expect((await keysUnder(outputs['model.onnx'].uri)).some((k) => k.endsWith('.onnx'))).toBe(true);
  }

  // Round 1's GENERATE sampled π_0 and its JUDGE scored with it: both read it through the s3:// cache.
  const cached = path.join(dataDir, 's3-cache', BUCKET, 'models', RUN, 'round-0', 'learn', 'attempt-1');
  expect(filesUnder(cached).some((f) => f.endsWith('.onnx'))).toBe(true);
  // The run directory holds the stages' records and data, no model weights.
  const runFiles = filesUnder(path.join(dataDir, 'runs', RUN));
  expect(runFiles.length).toBeGreaterThan(0);
  expect(runFiles.filter((f) => /\.(onnx|safetensors|bin|pt)$/.test(f) || f.includes('onnx_data'))).toEqual([]);

  // GetRun counts the run's objects in the bucket apart from its directory: what is left after retention (round 2's
  // models, and every round's job manifest and metrics files: retention deletes models only), as listed here.
  retainedBytes = Number(run.objectStoreBytes ?? 0);
  expect(retainedBytes).toBeGreaterThan(0);
  expect(retainedBytes).toBe(await bytesUnder(`${STORE}/${RUN}`));
});

test('a published attempt prefix is never reused: the trainer refuses it, and the stage executed again gets attempt 2', async () => {
  const runId = 'micro-s3-taken';
  const taken = `${STORE}/${runId}/round-0/learn/attempt-1`;
  const local = fs.mkdtempSync(path.join(dataDir, 'taken-'));
  fs.writeFileSync(path.join(local, 'weights.bin'), Buffer.alloc(100, 7));
  const earlier = await publishArtifact(local, taken, 'test');

  const failed = await microRun(runId);
  expect(failed.state).toBe('JOB_STATE_FAILED');
  expect(failed.error).toContain('spec.output_uri');
  expect(failed.error).toContain(`${taken} is already published`);
  expect(await publishedSha256(parseS3Uri(taken))).toBe(earlier.sha256);

  const resumed = await microRun(runId);
  expect({ state: resumed.state, error: resumed.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: undefined });
  const learn0 = learnManifest(0, runId);
  expect(learn0.attempt).toBe(2);
  expect(learn0.outputs['model.onnx'].uri.startsWith(`${STORE}/${runId}/round-0/learn/attempt-2/`)).toBe(true);
  expect(await publishedSha256(parseS3Uri(learn0.outputs['model.onnx'].uri))).toBe(learn0.outputs['model.onnx'].sha256);
  // The earlier content at attempt-1 is as it was.
  expect(await publishedSha256(parseS3Uri(taken))).toBe(earlier.sha256);
  // Without retention every round's models stay, and the test's object at attempt-1: all of them counted.
  expect(Number(resumed.objectStoreBytes ?? 0)).toBe(await bytesUnder(`${STORE}/${runId}`));
  expect(Number(resumed.objectStoreBytes ?? 0)).toBeGreaterThan(2 * retainedBytes);
});

test('an engine run loads each round\'s policy from the bucket when the engine reads it, and says what to set when not', async () => {
  const run = await microRun('micro-s3-engine', 0, { reads_object_store: true });
  expect({ state: run.state, error: run.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: undefined });
  // The engine (the generator's /v1 endpoint) fetched the rounds' exports by their s3:// prefixes into its cache.
  for (const round of [0, 1]) {
    const onnx = learnManifest(round, 'micro-s3-engine').outputs['model.onnx'];
    expect(onnx.uri.startsWith(`${STORE}/micro-s3-engine/round-${round}/learn/attempt-1/`)).toBe(true);
    const cached = path.join(dataDir, 's3-cache', BUCKET, parseS3Uri(onnx.uri).key);
    expect(filesUnder(cached).some((f) => f.endsWith('.onnx'))).toBe(true);
  }

  const refused = await microRun('micro-s3-engine-local', 0, {});
  expect(refused.state).toBe('JOB_STATE_FAILED');
  expect(refused.error).toContain("round 0's model is in object storage");
  expect(refused.error).toContain('set engine.reads_object_store');
});
