// vLLM's runtime loading routes on the generator's /v1 endpoint (OPENAI_RUNTIME_LOADING=1): a run's coordinator loads
// each round's policy by name (RunSpec.engine), here with the ONNX export of the tiny policy as lora_path.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { causalModelCache, OpenAiLanguageModel } from '@alignment/lm';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { startOpenAiServer, type RunningOpenAiServer } from './http-server';

let models: TinyModels;
let server: RunningOpenAiServer;
let closed: RunningOpenAiServer;
let adapterDir: string;
const cache = causalModelCache(2);

beforeAll(async () => {
  models = await tinyModels();
  const fixed = new Map([['reference', models.reference]]);
  server = await startOpenAiServer({ port: 0, models: fixed, cache, runtimeLoading: true });
  closed = await startOpenAiServer({ port: 0, models: fixed, cache });
  adapterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-'));
  fs.writeFileSync(path.join(adapterDir, 'adapter_config.json'), '{"peft_type": "LORA"}');
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  await server?.close();
  await closed?.close();
  await cache.clear();
  fs.rmSync(adapterDir, { recursive: true, force: true });
});

async function post(base: string, route: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}
const served = async () => ((await (await fetch(`${server.baseUrl}/models`)).json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
const errorOf = (text: string) => JSON.parse(text).error as { param: string; message: string };

describe('POST /v1/load_lora_adapter and /v1/unload_lora_adapter', () => {
  it("serve a policy loaded by name: it scores as the policy (PyTorch's value), not the reference, until unloaded", async () => {
    const loaded = await post(server.baseUrl, '/load_lora_adapter', { lora_name: 'run-round-1', lora_path: models.policy });
    expect(loaded).toEqual({ status: 200, text: "Success: LoRA adapter 'run-round-1' added successfully." });
    expect(await served()).toEqual(['reference', 'run-round-1']);
    const item = models.values.scores.policy[0];
    const remote = await OpenAiLanguageModel.load(models.policy, { baseUrl: server.baseUrl, model: 'run-round-1' });
    const [score] = await remote.score([{ promptIds: item.prompt_ids, responseIds: item.response_ids }]);
    expect(Math.abs(score.logp - item.logp)).toBeLessThan(1e-3);
    expect(Math.abs(score.logp - models.values.scores.reference[0].logp)).toBeGreaterThan(1e-3);

    const again = await post(server.baseUrl, '/load_lora_adapter', { lora_name: 'run-round-1', lora_path: models.policy });
    expect(again.status).toBe(400);
    expect(errorOf(again.text)).toMatchObject({ param: 'lora_name', message: "invalid lora_name: The lora adapter 'run-round-1' has already been loaded." });

    expect(await post(server.baseUrl, '/unload_lora_adapter', { lora_name: 'run-round-1' })).toEqual({ status: 200, text: "Success: LoRA adapter 'run-round-1' removed successfully." });
    expect(await served()).toEqual(['reference']);
    await expect(remote.score([{ promptIds: item.prompt_ids, responseIds: item.response_ids }])).rejects.toThrow(/404.*'run-round-1' does not exist/);
  });

  it('refuses a peft adapter directory (ONNX Runtime cannot apply one), a missing path and the fixed models, naming the field', async () => {
    const adapter = await post(server.baseUrl, '/load_lora_adapter', { lora_name: 'a', lora_path: adapterDir });
    expect(adapter.status).toBe(400);
    expect(errorOf(adapter.text)).toEqual(expect.objectContaining({ param: 'lora_path', message: expect.stringContaining('is a LoRA adapter, which this server cannot apply') }));
    const missing = await post(server.baseUrl, '/load_lora_adapter', { lora_name: 'b', lora_path: path.join(adapterDir, 'nope') });
    expect(errorOf(missing.text).param).toBe('lora_path');
    expect(errorOf((await post(server.baseUrl, '/load_lora_adapter', { lora_path: models.policy })).text).param).toBe('lora_name');
    const fixed = await post(server.baseUrl, '/unload_lora_adapter', { lora_name: 'reference' });
    expect(fixed.status).toBe(400);
    expect(errorOf(fixed.text).message).toBe("invalid lora_name: 'reference' is served from OPENAI_MODELS and cannot be unloaded");
    const unknown = await post(server.baseUrl, '/unload_lora_adapter', { lora_name: 'never' });
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown.text).message).toBe("The lora adapter 'never' cannot be found.");
    expect(await served()).toEqual(['reference']);
  });

  it('are not served without runtime loading (as vLLM without VLLM_ALLOW_RUNTIME_LORA_UPDATING)', async () => {
    const res = await post(closed.baseUrl, '/load_lora_adapter', { lora_name: 'x', lora_path: models.policy });
    expect(res.status).toBe(404);
    expect(errorOf(res.text).message).toMatch(/^no route POST \/v1\/load_lora_adapter/);
  });
});
