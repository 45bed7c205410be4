// A LEARN stage's s3:// outputs (MODEL_STORE_URI) as stage.json verification sees them, against a moto server on
// loopback: a published model verifies by its manifest's sha256; an absent one (retention, a lifecycle rule, an
// unfinished publication without its manifest) or other content makes the stage execute again on resume.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deleteS3Artifact, publishArtifact } from '@alignment/artifacts';
import { useMotoInSpec } from '../../../../libs/artifacts/testing/moto-server';
import { verifyOutput } from './stage-manifest';

jest.setTimeout(120_000);
const BUCKET = 'stage-outputs';
let root: string;
useMotoInSpec([BUCKET]);
beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'stage-s3-'))));
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

async function publishModel(uri: string, content: string) {
  const local = fs.mkdtempSync(path.join(root, 'model-'));
  fs.writeFileSync(path.join(local, 'model.onnx'), Buffer.alloc(2000, content));
  return publishArtifact(local, uri, 'test');
}

it('verifies a published s3:// model by its manifest, and names what is wrong otherwise', async () => {
  const uri = `s3://${BUCKET}/models/r/round-0/learn/attempt-1/model/onnx`;
  const published = await publishModel(uri, 'a');
  expect(await verifyOutput({ uri, sha256: published.sha256, kind: 'dir' })).toBeUndefined();
  expect(await verifyOutput({ uri, sha256: 'f'.repeat(64), kind: 'dir' })).toBe(`${uri} has sha256 ${published.sha256}, recorded ${'f'.repeat(64)}`);
  expect(await verifyOutput({ uri, sha256: '', kind: 'dir' })).toBe(`${uri} has no recorded sha256`);
  await deleteS3Artifact(uri, 'test');
  expect(await verifyOutput({ uri, sha256: published.sha256, kind: 'dir' })).toBe(`${uri} is missing (nothing published there)`);
});

it('verifies an s3:// file output (the job manifest) by the object itself', async () => {
  const local = path.join(root, 'manifest.json');
  fs.writeFileSync(local, '{"files":[]}\n');
  const uri = `s3://${BUCKET}/models/r/round-0/learn/attempt-1/manifest.json`;
  const published = await publishArtifact(local, uri, 'test');
  expect(await verifyOutput({ uri, sha256: published.sha256, kind: 'file' })).toBeUndefined();
  expect(await verifyOutput({ uri: `${uri}.gone`, sha256: published.sha256, kind: 'file' })).toBe(`${uri}.gone is missing (nothing published there)`);
});

it('refuses an s3:// output outside S3_ARTIFACT_ROOTS as not verified', async () => {
  process.env.S3_ARTIFACT_ROOTS = `s3://${BUCKET}/elsewhere`;
  try {
    const problem = await verifyOutput({ uri: `s3://${BUCKET}/models/x`, sha256: 'a'.repeat(64), kind: 'dir' });
    expect(problem).toMatch(/^s3:\/\/stage-outputs\/models\/x: .*S3_ARTIFACT_ROOTS/);
  } finally {
    delete process.env.S3_ARTIFACT_ROOTS;
  }
});
