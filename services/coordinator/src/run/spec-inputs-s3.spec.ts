// RunSpec inputs on s3:// (issue 14 §5), against a real S3-compatible server (moto) on loopback: fetched into the
// cache, checked against their sha256 and pinned there; a directory without its manifest, a wrong digest and an
// object outside S3_ARTIFACT_ROOTS / S3_READ_ONLY_ROOTS are refused naming the field.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { publishArtifact, s3Client } from '@alignment/artifacts';
import { PermissionDeniedError } from '@alignment/errors';
import { type MotoServer, motoUnavailable, startMoto } from '../../../../libs/artifacts/testing/moto-server';
import { makeWorkspace, validSpec, type Workspace } from '../../testing/run-fixtures';
import { validateSpec } from './run-spec';

jest.setTimeout(120_000);
let ws: Workspace;
let moto: MotoServer | undefined;
const saved = { ...process.env };
const refs: Record<string, { uri: string; sha256: string }> = {};

beforeAll(async () => {
  ws = makeWorkspace();
  // moto[s3] is pinned in the trainer's venv (requirements-io.txt): without it the install is broken, and these tests fail.
  const unavailable = await motoUnavailable();
  if (unavailable) throw new Error(`the S3 tests need a moto server: ${unavailable}`);
  moto = await startMoto();
  Object.assign(process.env, {
    S3_ENDPOINT_URL: moto.endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    S3_CACHE_DIR: path.join(ws.root, 's3-cache'),
  });
  await s3Client().send(new CreateBucketCommand({ Bucket: 'run-inputs' }));
  for (const [name, local] of [['hf', ws.hfCheckpoint], ['onnx', ws.onnx], ['seed', ws.seedPairs]] as const) {
    const info = await publishArtifact(local, `s3://run-inputs/models/${name}`, name);
    refs[name] = { uri: info.uri, sha256: info.sha256 };
  }
});
afterAll(async () => {
  await moto?.stop();
  process.env = saved;
  ws.cleanup();
});

const s3Spec = () =>
  validSpec(ws, { baseModel: { hfCheckpoint: { ...refs.hf, sizeBytes: 0 }, onnx: { ...refs.onnx, sizeBytes: 0 } }, seedPairs: { ...refs.seed, sizeBytes: 0 } });
const failure = (p: Promise<unknown>) => p.then(() => 'ok', (e: { field?: string; message: string }) => `${e.constructor.name} ${e.field ?? ''}: ${e.message}`);

it('fetches s3:// inputs into the cache, checks them and pins the local copies', async () => {
  const { spec } = await validateSpec(s3Spec());
  const cache = path.join(ws.root, 's3-cache', 'run-inputs', 'models');
  expect(spec.baseModel!.onnx).toMatchObject({ uri: `file://${path.join(cache, 'onnx')}`, sha256: refs.onnx.sha256 });
  expect(spec.seedPairs).toMatchObject({ uri: `file://${path.join(cache, 'seed')}`, sha256: refs.seed.sha256 });
  expect(fs.readFileSync(path.join(cache, 'seed'), 'utf8')).toBe(fs.readFileSync(ws.seedPairs, 'utf8'));
  expect(fs.readFileSync(path.join(cache, 'hf', 'model.safetensors'), 'utf8')).toBe('base weights');
});

it('refuses a prefix without its manifest, a wrong sha256 and objects outside the allowed roots, naming the field', async () => {
  const noManifest = s3Spec();
  noManifest.baseModel!.onnx = { uri: 's3://run-inputs/models/absent', sha256: '', sizeBytes: 0 };
  expect(await failure(validateSpec(noManifest))).toMatch(/^InvalidArgumentError spec\.base_model\.onnx\.uri: .*no manifest\.json/);
  const wrong = s3Spec();
  wrong.seedPairs!.sha256 = 'c'.repeat(64);
  expect(await failure(validateSpec(wrong))).toMatch(/^InvalidArgumentError spec\.seed_pairs\.sha256: /);
  process.env.S3_ARTIFACT_ROOTS = 's3://run-inputs/runs';
  process.env.S3_READ_ONLY_ROOTS = 's3://run-inputs/models/hf s3://run-inputs/models/onnx';
  try {
    const error = await validateSpec(s3Spec()).catch((e: Error) => e);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error).toMatchObject({ field: 'spec.seed_pairs.uri' });
  } finally {
    delete process.env.S3_ARTIFACT_ROOTS;
    delete process.env.S3_READ_ONLY_ROOTS;
  }
});
