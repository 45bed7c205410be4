// vLLM's runtime loading route on the generator's /v1 endpoint with a model in object storage (a run's models in
// MODEL_STORE_URI, RunSpec.engine.reads_object_store): lora_path is the s3:// prefix of a published ONNX export, which
// the generator fetches into its S3 cache and verifies before it loads (a moto server on loopback).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { publishArtifact } from '@alignment/artifacts';
import { causalModelCache, OpenAiLanguageModel } from '@alignment/lm';
import { useMotoInSpec } from '../../../../libs/artifacts/testing/moto-server';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { startOpenAiServer, type RunningOpenAiServer } from './http-server';

const BUCKET = 'models';
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-s3-cache-'));
useMotoInSpec([BUCKET], () => ({ S3_CACHE_DIR: cacheDir }));
let models: TinyModels;
let server: RunningOpenAiServer;
const cache = causalModelCache(2);

beforeAll(async () => {
  models = await tinyModels();
  server = await startOpenAiServer({ port: 0, models: new Map([['reference', models.reference]]), cache, runtimeLoading: true });
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  await server?.close();
  await cache.clear();
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

async function load(name: string, where: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.baseUrl}/load_lora_adapter`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lora_name: name, lora_path: where }) });
  return { status: res.status, text: await res.text() };
}
const errorOf = (text: string) => JSON.parse(text).error as { param: string; message: string };

describe('POST /v1/load_lora_adapter with an s3:// lora_path', () => {
  it("loads a published ONNX export from the bucket through the S3 cache, and it scores as the policy", async () => {
    const staged = fs.mkdtempSync(path.join(os.tmpdir(), 'policy-export-'));
    fs.cpSync(models.policy, staged, { recursive: true });
    const uri = `s3://${BUCKET}/team/run-1/round-1/learn/attempt-1/onnx`;
    await publishArtifact(staged, uri, 'test');
    fs.rmSync(staged, { recursive: true, force: true });

    expect(await load('run-1-round-1', uri)).toEqual({ status: 200, text: "Success: LoRA adapter 'run-1-round-1' added successfully." });
    expect(fs.existsSync(path.join(cacheDir, BUCKET, 'team', 'run-1', 'round-1', 'learn', 'attempt-1', 'onnx', 'model.onnx'))).toBe(true);
    const item = models.values.scores.policy[0];
    const remote = await OpenAiLanguageModel.load(models.policy, { baseUrl: server.baseUrl, model: 'run-1-round-1' });
    const [score] = await remote.score([{ promptIds: item.prompt_ids, responseIds: item.response_ids }]);
    expect(Math.abs(score.logp - item.logp)).toBeLessThan(1e-3);
  });

  it('refuses a prefix with no published export, and one outside the S3 roots, naming lora_path', async () => {
    const absent = await load('absent', `s3://${BUCKET}/team/run-1/round-2/learn/attempt-1/onnx`);
    expect(absent.status).toBe(400);
    expect(errorOf(absent.text)).toEqual(expect.objectContaining({ param: 'lora_path', message: expect.stringContaining('manifest') }));

    process.env.S3_ARTIFACT_ROOTS = `s3://${BUCKET}/elsewhere`;
    try {
      const outside = await load('outside', `s3://${BUCKET}/team/run-1/round-1/learn/attempt-1/onnx`);
      expect(outside.status).toBe(403);
      expect(errorOf(outside.text).param).toBe('lora_path');
    } finally {
      delete process.env.S3_ARTIFACT_ROOTS;
    }
  });
});
