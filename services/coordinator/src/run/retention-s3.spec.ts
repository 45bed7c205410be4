// Retention of s3:// models (issue 14 §5), against a real S3-compatible server (moto) on loopback: keep_last_checkpoints
// deletes old rounds' LEARN checkpoints and exports from the bucket (manifest first), only where the coordinator may
// write (S3_ARTIFACT_ROOTS), and DeleteRun's removal deletes the run's remaining s3:// models and counts their bytes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchArtifact, listKeys, parseS3Uri, publishArtifact } from '@alignment/artifacts';
import { useMotoInSpec } from '../../../../libs/artifacts/testing/moto-server';
import { diskBytes, pruneCheckpoints, removeRunDir } from './retention';

jest.setTimeout(120_000);
const BUCKET = 'run-models';
let root: string;
useMotoInSpec([BUCKET]);
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-s3-'));
  process.env.S3_CACHE_DIR = path.join(root, 'cache');
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
  delete process.env.S3_ARTIFACT_ROOTS;
});

/** Publishes a small model directory to `uri`; returns the bytes its objects hold (files and manifest.json). */
async function publishModel(uri: string, content: string): Promise<{ uri: string; sha256: string; bytes: number }> {
  const local = fs.mkdtempSync(path.join(root, 'model-'));
  fs.writeFileSync(path.join(local, 'config.json'), JSON.stringify({ content }));
  fs.writeFileSync(path.join(local, 'weights.bin'), Buffer.alloc(1000, content));
  const info = await publishArtifact(local, uri, 'test');
  return { uri: info.uri, sha256: info.sha256, bytes: (await listKeys(parseS3Uri(uri))).reduce((n, o) => n + o.size, 0) };
}

/** A run directory whose LEARN stages of rounds 0..n-1 recorded s3:// models under `prefix`; returns what each published. */
async function runWithS3Models(runDir: string, rounds: number, prefix: string) {
  const published = [];
  for (let round = 0; round < rounds; round += 1) {
    const dir = path.join(runDir, `round-${round}`, 'learn');
    fs.mkdirSync(dir, { recursive: true });
    const hf = await publishModel(`${prefix}/round-${round}/checkpoint`, `hf${round}`);
    const onnx = await publishModel(`${prefix}/round-${round}/onnx`, `onnx${round}`);
    const outputs = { 'model.hf_checkpoint': { ...hf, sizeBytes: 0, kind: 'dir' }, 'model.onnx': { ...onnx, sizeBytes: 0, kind: 'dir' } };
    fs.writeFileSync(path.join(dir, 'stage.json'), JSON.stringify({ version: 1, round, stage: 'LEARN', outputs }));
    published.push({ hf, onnx });
  }
  return published;
}

const keysUnder = async (uri: string) => (await listKeys(parseS3Uri(uri))).map((o) => o.key);

it('keep_last_checkpoints deletes old rounds\' s3:// models, manifest and objects, and keeps the last K', async () => {
  const runDir = path.join(root, 'runs', 'r1');
  const models = await runWithS3Models(runDir, 3, `s3://${BUCKET}/runs/r1`);
  const freed = await pruneCheckpoints(runDir, 1, 2);
  expect(freed).toBe(models[0].hf.bytes + models[0].onnx.bytes + models[1].hf.bytes + models[1].onnx.bytes);
  for (const round of [0, 1]) {
    for (const m of [models[round].hf, models[round].onnx]) expect(await keysUnder(m.uri)).toEqual([]);
    expect(JSON.parse(fs.readFileSync(path.join(runDir, `round-${round}`, 'learn', 'pruned.json'), 'utf8'))).toEqual({ outputs: ['model.hf_checkpoint', 'model.onnx'] });
  }
  // The last round's model is whole and verifies against its recorded sha256.
  const kept = await fetchArtifact(models[2].hf.uri, 'model', { sha256: models[2].hf.sha256, kind: 'dir' });
  expect(JSON.parse(fs.readFileSync(path.join(kept, 'config.json'), 'utf8'))).toEqual({ content: 'hf2' });
  expect(await pruneCheckpoints(runDir, 1, 2)).toBe(0); // pruned once only

  // DeleteRun: the remaining s3:// models go too, and their bytes count with the directory's.
  const local = diskBytes(runDir);
  expect(await removeRunDir(runDir)).toBe(local + models[2].hf.bytes + models[2].onnx.bytes);
  expect(await keysUnder(`s3://${BUCKET}/runs/r1`)).toEqual([]);
  expect(fs.existsSync(runDir)).toBe(false);
});

it('leaves s3:// models outside S3_ARTIFACT_ROOTS alone: not deleted, not listed as pruned', async () => {
  const runDir = path.join(root, 'runs', 'r2');
  const models = await runWithS3Models(runDir, 2, `s3://${BUCKET}/shared/r2`);
  process.env.S3_ARTIFACT_ROOTS = `s3://${BUCKET}/runs`;
  expect(await pruneCheckpoints(runDir, 1, 1)).toBe(0);
  expect(fs.existsSync(path.join(runDir, 'round-0', 'learn', 'pruned.json'))).toBe(false);
  expect((await keysUnder(models[0].hf.uri)).sort()).toEqual(['shared/r2/round-0/checkpoint/config.json', 'shared/r2/round-0/checkpoint/manifest.json', 'shared/r2/round-0/checkpoint/weights.bin']);
  await removeRunDir(runDir);
  expect(await keysUnder(models[1].onnx.uri)).toHaveLength(3);
});
