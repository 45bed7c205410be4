// s3:// artifacts against a real S3-compatible server (moto) on loopback.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PermissionDeniedError } from '@alignment/errors';
import { useMotoInSpec } from '../../testing/moto-server';
import { ArtifactError, deleteS3Artifact, fetchArtifact, MANIFEST_FILE, parseS3Uri, publishArtifact, s3Client } from '../index';

jest.setTimeout(120_000);
const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

let dir: string;
useMotoInSpec(['artifacts']);
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3-spec-'));
  process.env = { ...process.env, S3_CACHE_DIR: path.join(dir, 'cache'), S3_MULTIPART_PART_BYTES: String(5 * MiB) };
  delete process.env.ARTIFACT_ROOTS;
  delete process.env.S3_ARTIFACT_ROOTS;
  delete process.env.S3_READ_ONLY_ROOTS;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));


function modelDir(bigBytes = 0): string {
  const d = path.join(dir, 'model');
  fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(d, 'config.json'), '{"model_type":"llama"}');
  fs.writeFileSync(path.join(d, 'sub', 'tokenizer.json'), '{"v":1}');
  if (bigBytes > 0) fs.writeFileSync(path.join(d, 'model.safetensors'), randomBytes(bigBytes));
  return d;
}

const kindOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof ArtifactError ? e.kind : String(e)));

describe('s3:// artifacts', () => {
  it('round-trips a JSONL file and a model directory with their sha256', async () => {
    const pairs = path.join(dir, 'pairs.jsonl');
    fs.writeFileSync(pairs, '{"prompt":"p","chosen":"a","rejected":"b"}\n');
    const file = await publishArtifact(pairs, 's3://artifacts/runs/r1/pairs.jsonl', 'output_uri');
    expect(file).toMatchObject({ uri: 's3://artifacts/runs/r1/pairs.jsonl', sha256: sha(fs.readFileSync(pairs)), sizeBytes: fs.statSync(pairs).size });
    const back = await fetchArtifact(file.uri, 'pairs.uri', { sha256: file.sha256, kind: 'file' });
    expect(fs.readFileSync(back, 'utf8')).toBe(fs.readFileSync(pairs, 'utf8'));

    const model = modelDir();
    const info = await publishArtifact(model, 's3://artifacts/runs/r1/model', 'output_uri');
    expect(info.sha256).toBe(sha(fs.readFileSync(path.join(model, MANIFEST_FILE))));
    const local = await fetchArtifact(info.uri, 'model.uri', { sha256: info.sha256, kind: 'dir' });
    expect(fs.readFileSync(path.join(local, 'sub', 'tokenizer.json'), 'utf8')).toBe('{"v":1}');
    expect(JSON.parse(fs.readFileSync(path.join(local, MANIFEST_FILE), 'utf8')).files.map((f: { path: string }) => f.path)).toEqual(['config.json', 'sub/tokenizer.json']);
  });

  it('uploads a file larger than a part as a multipart upload and reads it back intact', async () => {
    const model = modelDir(11 * MiB);
    const info = await publishArtifact(model, 's3://artifacts/big/model', 'output_uri');
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: 'artifacts', Key: 'big/model/model.safetensors' }));
    expect(head.ETag).toMatch(/-3"$/); // a multipart ETag ends in -<parts>: 11 MiB in 5 MiB parts
    expect(head.Metadata?.sha256).toBe(sha(fs.readFileSync(path.join(model, 'model.safetensors'))));
    const local = await fetchArtifact(info.uri, 'model.uri', { sha256: info.sha256, kind: 'dir' });
    expect(sha(fs.readFileSync(path.join(local, 'model.safetensors')))).toBe(head.Metadata?.sha256);
  });

  it('never replaces a published artifact (ArtifactError exists), takes the same content as a retry, and writes over an unpublished prefix', async () => {
    const model = modelDir();
    const info = await publishArtifact(model, 's3://artifacts/once/model', 'output_uri');
    await expect(publishArtifact(model, info.uri, 'output_uri')).resolves.toMatchObject({ sha256: info.sha256 });
    fs.writeFileSync(path.join(model, 'config.json'), '{"model_type":"gpt2"}');
    fs.rmSync(path.join(model, MANIFEST_FILE));
    const error = await publishArtifact(model, info.uri, 'output_uri').catch((e: Error) => e);
    expect(error).toMatchObject({ kind: 'exists', message: expect.stringContaining(`s3://artifacts/once/model is already published with other content (sha256 ${info.sha256}`) });
    const back = await fetchArtifact(info.uri, 'model.uri', { sha256: info.sha256, kind: 'dir' });
    expect(fs.readFileSync(path.join(back, 'config.json'), 'utf8')).toBe('{"model_type":"llama"}');

    const f = path.join(dir, 'f.jsonl');
    fs.writeFileSync(f, '{}\n');
    const file = await publishArtifact(f, 's3://artifacts/once/f.jsonl', 'output_uri');
    await expect(publishArtifact(f, file.uri, 'output_uri')).resolves.toMatchObject({ sha256: sha('{}\n'), sizeBytes: 3 });
    fs.writeFileSync(f, '{"x":1}\n');
    expect(await kindOf(publishArtifact(f, file.uri, 'output_uri'))).toBe('exists');

    // An interrupted publication (objects, no manifest) is not published: it is written over, its strays removed.
    await s3Client().send(new PutObjectCommand({ Bucket: 'artifacts', Key: 'half2/model/stale.bin', Body: 'x' }));
    await publishArtifact(model, 's3://artifacts/half2/model', 'output_uri');
    await expect(kindOf(s3Client().send(new HeadObjectCommand({ Bucket: 'artifacts', Key: 'half2/model/stale.bin' })))).resolves.not.toBe('ok');
  });

  it('treats a directory without its manifest as absent', async () => {
    const client = s3Client();
    await client.send(new PutObjectCommand({ Bucket: 'artifacts', Key: 'half/model/config.json', Body: '{}' }));
    expect(await kindOf(fetchArtifact('s3://artifacts/half/model', 'model.uri', { kind: 'dir' }))).toBe('not-found');
    const info = await publishArtifact(modelDir(), 's3://artifacts/gone/model', 'output_uri');
    expect(await deleteS3Artifact(info.uri, 'run_id')).toBe(info.sizeBytes + fs.statSync(path.join(dir, 'model', MANIFEST_FILE)).size);
    expect(await kindOf(fetchArtifact(info.uri, 'model.uri', { kind: 'dir' }))).toBe('not-found');
  });

  it('refuses content that does not match its sha256, leaving nothing in the cache', async () => {
    const info = await publishArtifact(modelDir(), 's3://artifacts/t/model', 'output_uri');
    expect(await kindOf(fetchArtifact(info.uri, 'model.uri', { sha256: sha('other'), kind: 'dir' }))).toBe('mismatch');
    await s3Client().send(new PutObjectCommand({ Bucket: 'artifacts', Key: 't/model/config.json', Body: '{"tampered":1}' }));
    const error = await fetchArtifact(info.uri, 'model.uri', { sha256: info.sha256, kind: 'dir' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(ArtifactError);
    expect((error as ArtifactError).message).toMatch(/config\.json: content differs from the manifest/);
    expect(fs.existsSync(path.join(dir, 'cache', 'artifacts', 't', 'model'))).toBe(false);
    const f = path.join(dir, 'f.jsonl');
    fs.writeFileSync(f, '{}\n');
    const file = await publishArtifact(f, 's3://artifacts/t/f.jsonl', 'output_uri');
    expect(await kindOf(fetchArtifact(file.uri, 'pairs.uri', { sha256: sha('x'), kind: 'file' }))).toBe('mismatch');
    expect(fs.existsSync(path.join(dir, 'cache', 'artifacts', 't', 'f.jsonl'))).toBe(false);
  });

  it('refuses keys outside S3_ARTIFACT_ROOTS / S3_READ_ONLY_ROOTS with PERMISSION_DENIED naming the field', async () => {
    Object.assign(process.env, { S3_ARTIFACT_ROOTS: 's3://artifacts/runs', S3_READ_ONLY_ROOTS: 's3://artifacts/models' });
    const f = path.join(dir, 'f.jsonl');
    fs.writeFileSync(f, '{}\n');
    await expect(publishArtifact(f, 's3://artifacts/runs/x.jsonl', 'output_uri')).resolves.toMatchObject({ sizeBytes: 3 });
    for (const [uri, mode] of [['s3://artifacts/runs-old/x.jsonl', 'write'], ['s3://artifacts/models/x.jsonl', 'write'], ['s3://other/runs/x.jsonl', 'write']]) {
      const error = await publishArtifact(f, uri, 'output_uri').catch((e: Error) => e);
      expect(error).toBeInstanceOf(PermissionDeniedError);
      expect(error).toMatchObject({ field: 'output_uri', message: expect.stringContaining(mode) });
    }
    const read = await fetchArtifact('s3://artifacts/secret/x', 'prompt_set.uri', { kind: 'file' }).catch((e: Error) => e);
    expect(read).toMatchObject({ field: 'prompt_set.uri', message: expect.stringContaining('S3_READ_ONLY_ROOTS') });
    expect(await kindOf(fetchArtifact('s3://artifacts/models/none', 'model.uri', { kind: 'file' }))).toBe('not-found');
  });
});

describe('parseS3Uri', () => {
  it('splits bucket and key and refuses what cannot name an object', () => {
    expect(parseS3Uri('s3://my-bucket/a/b.jsonl')).toEqual({ bucket: 'my-bucket', key: 'a/b.jsonl' });
    expect(parseS3Uri('S3://my-bucket/dir/')).toEqual({ bucket: 'my-bucket', key: 'dir' });
    for (const bad of ['s3://my-bucket', 's3://My_Bucket/k', 's3://b/k', 's3://bucket/a/../b', 's3://bucket/a//b', 'file:///x']) {
      expect(() => parseS3Uri(bad)).toThrow(ArtifactError);
    }
  });
});
