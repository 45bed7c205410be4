// `npx nx run artifacts:s3-check`: s3:// artifacts round-tripped between TypeScript (libs/artifacts) and Python
// (services/trainer's objectstore.py) through a real S3-compatible server (moto) on loopback. TypeScript publishes a
// model directory (one file large enough for a multipart upload) and a pairs file; Python downloads them, checks
// every file's sha256 against TypeScript's, and publishes its own; TypeScript downloads and checks those. The last
// line printed is {"check":"s3","ok":<bool>,"bytes":<bytes round-tripped>}; the exit status is non-zero unless ok.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { fetchArtifact, publishArtifact, s3Client } from '../src/index';
import { type MotoServer, startMoto, venvPython } from './moto-server';

const MiB = 1024 * 1024;
const BUCKET = 's3-check';
const REPO_ROOT = path.resolve(__dirname, '../../..');
const sha = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

function filesOf(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) Object.assign(out, filesOf(dir, rel));
    else if (rel !== 'manifest.json') out[rel] = sha(path.join(dir, rel));
  }
  return out;
}

const sorted = (o: Record<string, string>) => JSON.stringify(Object.entries(o).sort());

async function check(work: string): Promise<number> {
  const model = path.join(work, 'ts-model');
  fs.mkdirSync(path.join(model, 'tokenizer'), { recursive: true });
  fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify({ model_type: 'llama', writer: 'typescript' }));
  fs.writeFileSync(path.join(model, 'tokenizer', 'tokenizer.json'), JSON.stringify({ vocab: [1, 2, 3] }));
  fs.writeFileSync(path.join(model, 'model.onnx'), randomBytes(11 * MiB)); // three 5 MiB parts: multipart
  const pairs = path.join(work, 'ts-pairs.jsonl');
  fs.writeFileSync(pairs, Array.from({ length: 50 }, (_, i) => JSON.stringify({ prompt: `p${i}`, chosen: 'a', rejected: 'b' }) + '\n').join(''));
  const tsFiles = { ...filesOf(model), 'pairs.jsonl': sha(pairs) };
  const m = await publishArtifact(model, `s3://${BUCKET}/ts/model`, 'output_uri');
  const p = await publishArtifact(pairs, `s3://${BUCKET}/ts/pairs.jsonl`, 'output_uri');
  console.log(`typescript published ${m.uri} (${m.sizeBytes} bytes, manifest ${m.sha256}) and ${p.uri} (${p.sizeBytes} bytes)`);

  const python = await venvPython();
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      python,
      [path.join(__dirname, 's3_check.py'), BUCKET, m.sha256, p.sha256, JSON.stringify(tsFiles), work],
      { env: { ...process.env, PYTHONPATH: path.join(REPO_ROOT, 'services/trainer/src') }, maxBuffer: 1 << 20 },
      (error, out, err) => (error ? reject(new Error(`s3_check.py failed: ${err || error.message}`)) : resolve(out)),
    ),
  );
  const py = JSON.parse(stdout.trim().split('\n').pop()!) as { model_sha: string; pairs_sha: string; bytes: number; files: Record<string, string> };
  console.log(`python verified both and published s3://${BUCKET}/py/model and s3://${BUCKET}/py/pairs.jsonl (${py.bytes} bytes)`);

  const pyModel = await fetchArtifact(`s3://${BUCKET}/py/model`, 'model.uri', { sha256: py.model_sha, kind: 'dir' });
  const pyPairs = await fetchArtifact(`s3://${BUCKET}/py/pairs.jsonl`, 'pairs.uri', { sha256: py.pairs_sha, kind: 'file' });
  const seen = { ...filesOf(pyModel), 'pairs.jsonl': sha(pyPairs) };
  if (sorted(seen) !== sorted(py.files)) throw new Error(`files Python wrote differ after the round trip: ${sorted(seen)} vs ${sorted(py.files)}`);
  console.log('typescript verified what python published');
  return m.sizeBytes + p.sizeBytes + py.bytes;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 's3-check-'));
  let bytes = 0;
  let ok = false;
  let moto: MotoServer | undefined;
  try {
    moto = await startMoto();
    Object.assign(process.env, {
      S3_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: 's3-check',
      AWS_SECRET_ACCESS_KEY: 's3-check',
      AWS_REGION: 'us-east-1',
      S3_MULTIPART_PART_BYTES: String(5 * MiB),
      S3_CACHE_DIR: path.join(work, 'cache'),
      S3_ARTIFACT_ROOTS: `s3://${BUCKET}`,
    });
    await s3Client().send(new CreateBucketCommand({ Bucket: BUCKET }));
    bytes = await check(work);
    ok = true;
  } catch (error) {
    console.error(`s3-check failed: ${(error as Error).message}`);
  } finally {
    s3Client().destroy();
    await moto?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ check: 's3', ok, bytes }));
  process.exitCode = ok ? 0 : 1;
}

void main();
