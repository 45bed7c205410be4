// RunSpec inputs on s3:// (issue 14 §5), against a real S3-compatible server (moto) on loopback: fetched into the
// cache, checked against their sha256 and pinned there; a directory without its manifest, a wrong digest and an
// object outside S3_ARTIFACT_ROOTS / S3_READ_ONLY_ROOTS are refused naming the field.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { publishArtifact } from '@alignment/artifacts';
import { PermissionDeniedError } from '@alignment/errors';
import { useMotoInSpec } from '../../../../libs/artifacts/testing/moto-server';
import { makeWorkspace, validSpec, type Workspace } from '../../testing/run-fixtures';
import { validateSpec } from './run-spec';

jest.setTimeout(120_000);
let ws: Workspace;
const refs: Record<string, { uri: string; sha256: string }> = {};

beforeAll(() => (ws = makeWorkspace()));
useMotoInSpec(['run-inputs'], () => ({ S3_CACHE_DIR: path.join(ws.root, 's3-cache') }));
beforeAll(async () => {
  for (const [name, local] of [['hf', ws.hfCheckpoint], ['onnx', ws.onnx], ['seed', ws.seedPairs]] as const) {
    const info = await publishArtifact(local, `s3://run-inputs/models/${name}`, name);
    refs[name] = { uri: info.uri, sha256: info.sha256 };
  }
});
afterAll(() => ws.cleanup());

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
