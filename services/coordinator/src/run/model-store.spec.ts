// MODEL_STORE_URI (model-store.ts): the LEARN output each attempt gets, the JobSpec's output_uri, and the startup
// check that the store lies where the coordinator may write (S3_ARTIFACT_ROOTS), from the function up to the binary.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunSpec } from '@alignment/contracts';
import { freePort, spawnProcess, waitFor } from '@alignment/service-kit/testing';
import { configFromEnv } from '../config';
import { preferenceJobSpec } from './job-spec';
import { learnOutput, modelStoreFromEnv } from './model-store';

const root = path.resolve(__dirname, '../../../..');

describe('learnOutput', () => {
  it('puts each attempt under <store>/<run>/round-<t>/learn/attempt-<k>, a new prefix per attempt', () => {
    const args = { store: 's3://models/team/a', runId: 'micro', round: 2, stageDir: '/data/runs/micro/round-2/learn' };
    expect(learnOutput({ ...args, attempt: 1 })).toBe('s3://models/team/a/micro/round-2/learn/attempt-1');
    expect(learnOutput({ ...args, attempt: 2 })).toBe('s3://models/team/a/micro/round-2/learn/attempt-2');
  });

  it('stays under the stage directory without a store', () => {
    expect(learnOutput({ runId: 'micro', round: 0, attempt: 3, stageDir: '/data/runs/micro/round-0/learn' })).toBe('/data/runs/micro/round-0/learn/attempt-3');
  });

  it('becomes the JobSpec output_uri as it is (s3://) or as a file:// URI (local)', () => {
    const spec = RunSpec.fromPartial({ configuration: 1, seedTraining: { learningRate: 0.001 }, roundTraining: { learningRate: 0.001 } });
    const job = (output: string) => preferenceJobSpec({ spec, round: 0, init: { uri: 'file:///m', sha256: '', sizeBytes: 0 }, pairs: { uri: 'file:///p', sha256: '', sizeBytes: 0 }, output, seed: 1 });
    expect(job('s3://models/r/round-0/learn/attempt-1').outputUri).toBe('s3://models/r/round-0/learn/attempt-1');
    expect(job('/out/attempt-1').outputUri).toBe('file:///out/attempt-1');
  });
});

describe('modelStoreFromEnv', () => {
  it('is unset by default and normalises a bucket or prefix', () => {
    expect(modelStoreFromEnv({})).toBeUndefined();
    expect(modelStoreFromEnv({ MODEL_STORE_URI: '  ' })).toBeUndefined();
    expect(modelStoreFromEnv({ MODEL_STORE_URI: 's3://models/team/' })).toBe('s3://models/team');
    expect(modelStoreFromEnv({ MODEL_STORE_URI: 's3://models' })).toBe('s3://models');
  });

  it('refuses what is not an s3:// URI, naming MODEL_STORE_URI', () => {
    expect(() => modelStoreFromEnv({ MODEL_STORE_URI: '/data/models' })).toThrow("MODEL_STORE_URI must be an s3://bucket/prefix URI, got '/data/models'");
    expect(() => modelStoreFromEnv({ MODEL_STORE_URI: 's3://Bad_Bucket/x' })).toThrow(/^MODEL_STORE_URI: 'Bad_Bucket' is not a valid S3 bucket name/);
    expect(() => modelStoreFromEnv({ MODEL_STORE_URI: 's3://models/a/../b' })).toThrow(/^MODEL_STORE_URI: the key 'a\/..\/b' has an empty, '.' or '..' segment/);
  });

  it('must lie under S3_ARTIFACT_ROOTS when those are set', () => {
    const roots = { S3_ARTIFACT_ROOTS: 's3://models/team s3://scratch' };
    expect(modelStoreFromEnv({ ...roots, MODEL_STORE_URI: 's3://models/team/runs' })).toBe('s3://models/team/runs');
    expect(modelStoreFromEnv({ ...roots, MODEL_STORE_URI: 's3://models/team' })).toBe('s3://models/team');
    expect(modelStoreFromEnv({ ...roots, MODEL_STORE_URI: 's3://scratch' })).toBe('s3://scratch');
    for (const outside of ['s3://models/team-old', 's3://models', 's3://other/team']) {
      expect(() => modelStoreFromEnv({ ...roots, MODEL_STORE_URI: outside })).toThrow(
        `MODEL_STORE_URI ${outside} is outside S3_ARTIFACT_ROOTS (s3://models/team s3://scratch): the coordinator must be allowed to write its models`,
      );
    }
    // ARTIFACT_ROOTS alone confines s3:// to no bucket at all.
    expect(() => modelStoreFromEnv({ ARTIFACT_ROOTS: '/data', MODEL_STORE_URI: 's3://models/x' })).toThrow('MODEL_STORE_URI s3://models/x is outside S3_ARTIFACT_ROOTS (unset)');
  });

  it('is part of the configuration, with the trainer service or with Kubernetes LEARN Jobs', () => {
    expect(configFromEnv({ MODEL_STORE_URI: 's3://models/x/' }).modelStoreUri).toBe('s3://models/x');
    expect(configFromEnv({}).modelStoreUri).toBeUndefined();
    // The Jobs publish their models themselves (clients/kubernetes/learn-executor-s3.spec.ts).
    expect(configFromEnv({ MODEL_STORE_URI: 's3://models/x', LEARN_EXECUTOR: 'kubernetes' })).toEqual(
      expect.objectContaining({ modelStoreUri: 's3://models/x', learnExecutor: 'kubernetes' }),
    );
  });
});

it('the coordinator refuses to start with a MODEL_STORE_URI outside S3_ARTIFACT_ROOTS, naming the variable', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-store-'));
  try {
    const child = spawnProcess(
      process.execPath,
      ['--import', 'tsx', 'services/coordinator/src/main.ts'],
      { PORT: String(await freePort()), DATA_DIR: dataDir, S3_ARTIFACT_ROOTS: 's3://models/team', MODEL_STORE_URI: 's3://models/elsewhere' },
      root,
    );
    await waitFor(async () => child.child.exitCode !== null, 60_000, 'the coordinator to exit');
    expect(child.child.exitCode).toBe(1);
    expect(child.output()).toContain(
      'coordinator failed to start: MODEL_STORE_URI s3://models/elsewhere is outside S3_ARTIFACT_ROOTS (s3://models/team): the coordinator must be allowed to write its models',
    );
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, 90_000);
