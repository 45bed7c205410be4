// The judge with s3:// responses and output_uri, against a real S3-compatible server (moto) on loopback: the
// responses are downloaded and checked, the pairs written to the store and published to the bucket.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactStore, fetchArtifact, publishArtifact, readJsonl } from '@alignment/artifacts';
import { AlreadyExistsError, PermissionDeniedError } from '@alignment/errors';
import { causalModelCache, ModelCache, RewardModel } from '@alignment/lm';
import { useMotoInSpec } from '../../../../libs/artifacts/testing/moto-server';
import { judgePairs, type JudgeJob } from './judge-pairs';

jest.setTimeout(120_000);
let dir: string;
useMotoInSpec(['judge-data']);
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'judge-s3-'));
  process.env.S3_CACHE_DIR = path.join(dir, 'cache');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const deps = () => ({
  languageModels: causalModelCache(1),
  rewardModels: new ModelCache((d) => RewardModel.load(d), 1),
  store: new ArtifactStore(path.join(dir, 'store')),
});

async function uploadedResponses(): Promise<{ uri: string; sha256: string }> {
  const file = path.join(dir, 'responses.jsonl');
  const records = [
    { prompt_index: 0, prompt: 'Say hi.', responses: ['hi', 'hello there'] },
    { prompt_index: 1, prompt: 'Count.', responses: ['one two three', 'one'] },
  ];
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r) + '\n').join(''));
  const info = await publishArtifact(file, 's3://judge-data/runs/r1/responses.jsonl', 'responses');
  return { uri: info.uri, sha256: info.sha256 };
}

it('reads s3:// responses and publishes the pairs to an s3:// output_uri', async () => {
  const job: JudgeJob = { method: 'rule', responses: await uploadedResponses(), rule: { rule: 'length/shorter', tieTolerance: 0 }, outputUri: 's3://judge-data/runs/r1/pairs.jsonl' };
  const outcome = await judgePairs(job, deps());
  expect(outcome.pairs.uri).toBe('s3://judge-data/runs/r1/pairs.jsonl');
  expect(outcome.counts.numPairs).toBe(2);
  const local = await fetchArtifact(outcome.pairs.uri, 'pairs', { sha256: outcome.pairs.sha256, kind: 'file' });
  const pairs = [];
  for await (const { value } of readJsonl(local)) pairs.push(value as { chosen: string; rejected: string });
  expect(pairs.map((p) => [p.chosen, p.rejected])).toEqual([['hi', 'hello there'], ['one', 'one two three']]);
  expect(fs.readdirSync(path.join(dir, 'store', 'pairs'))).toEqual([]); // the staged copy is gone once published
});

it('never replaces a published s3:// output: a retried job succeeds, other pairs are ALREADY_EXISTS on output_uri', async () => {
  const responses = await uploadedResponses();
  const job: JudgeJob = { method: 'rule', responses, rule: { rule: 'length/shorter', tieTolerance: 0 }, outputUri: 's3://judge-data/runs/r2/pairs.jsonl' };
  const first = await judgePairs(job, deps());
  expect((await judgePairs(job, deps())).pairs.sha256).toBe(first.pairs.sha256);
  const file = path.join(dir, 'other.jsonl');
  fs.writeFileSync(file, JSON.stringify({ prompt_index: 0, prompt: 'Say bye.', responses: ['bye', 'goodbye now'] }) + '\n');
  const otherResponses = await publishArtifact(file, 's3://judge-data/runs/r2/other.jsonl', 'responses');
  const other = await judgePairs({ ...job, responses: { uri: otherResponses.uri, sha256: otherResponses.sha256 } }, deps()).catch((e: Error) => e);
  expect(other).toBeInstanceOf(AlreadyExistsError);
  expect(other).toMatchObject({ field: 'output_uri', message: expect.stringContaining(`s3://judge-data/runs/r2/pairs.jsonl is already published with other content (sha256 ${first.pairs.sha256}`) });
  const local = await fetchArtifact(first.pairs.uri, 'pairs', { sha256: first.pairs.sha256, kind: 'file' });
  expect(fs.readFileSync(local, 'utf8')).toContain('"chosen":"hi"');
});

it('refuses a missing bucket, and s3:// responses and outputs outside S3_ARTIFACT_ROOTS with PERMISSION_DENIED, naming the field', async () => {
  const responses = await uploadedResponses();
  // A missing bucket is refused before any work.
  const noBucket = await judgePairs({ method: 'rule', responses, rule: { rule: 'length/shorter', tieTolerance: 0 }, outputUri: 's3://no-such-bucket/out/p.jsonl' }, deps()).catch((e: Error) => e);
  expect(noBucket).toMatchObject({ field: 'output_uri', message: expect.stringContaining("no bucket 'no-such-bucket'") });
  process.env.S3_ARTIFACT_ROOTS = 's3://judge-data/out';
  try {
    const read = await judgePairs({ method: 'rule', responses, rule: { rule: 'length/shorter', tieTolerance: 0 }, outputUri: '' }, deps()).catch((e: Error) => e);
    expect(read).toBeInstanceOf(PermissionDeniedError);
    expect(read).toMatchObject({ field: 'responses.uri' });
    const write = await judgePairs({ method: 'rule', responses, rule: { rule: 'length/shorter', tieTolerance: 0 }, outputUri: 's3://judge-data/elsewhere/p.jsonl' }, deps()).catch((e: Error) => e);
    expect(write).toMatchObject({ field: 'output_uri' });
  } finally {
    delete process.env.S3_ARTIFACT_ROOTS;
  }
});
