// The coordinator's client of an inference engine's runtime loading (vLLM's /v1/load_lora_adapter), and the stage
// helper that loads each round's policy with it, against an HTTP server on loopback that answers as vLLM does (vLLM
// itself needs a GPU). tools/stack/engine.e2e.spec.ts runs the same path against the generator's real /v1 endpoint.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileUri } from '@alignment/artifacts';
import { EngineWeights, RunSpec, type ModelRef } from '@alignment/contracts';
import { StageAbortedError, StageFailedError, type StageExecutors } from '../run/executors';
import { policyModelName } from '../run/engine-policies';
import { referenceModel, servedPolicy } from '../run/stages/engine-models';
import type { StageContext } from '../run/stages/stage';
import { FakeVllm } from '../../testing/fake-vllm';
import { EngineClient } from './engine-client';

let vllm: FakeVllm;
let dir: string;
beforeEach(async () => {
  vllm = new FakeVllm();
  await vllm.start();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-client-'));
});
afterEach(async () => {
  await vllm.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as StageFailedError);

describe('EngineClient', () => {
  it("sends vLLM's request bodies and reads GET /v1/models", async () => {
    const client = new EngineClient(`${vllm.baseUrl}/`, { apiKey: 'k3y' });
    await client.load('run-round-0', '/data/runs/run/round-0/learn/attempt-1/model/adapter');
    expect(await client.models()).toEqual(['pi-init', 'run-round-0']);
    await client.unload('run-round-0');
    expect(vllm.received.map(({ method, url, body }) => ({ method, url, body }))).toEqual([
      { method: 'POST', url: '/v1/load_lora_adapter', body: { lora_name: 'run-round-0', lora_path: '/data/runs/run/round-0/learn/attempt-1/model/adapter' } },
      { method: 'GET', url: '/v1/models', body: undefined },
      { method: 'POST', url: '/v1/unload_lora_adapter', body: { lora_name: 'run-round-0' } },
    ]);
    expect(vllm.received.every((r) => r.authorization === 'Bearer k3y')).toBe(true);
  });

  it("fails the stage naming the engine's URL, the route, the name and the engine's message", async () => {
    const client = new EngineClient(vllm.baseUrl);
    vllm.failLoad = { status: 400, body: JSON.stringify({ object: 'error', message: 'LoRA rank 64 is greater than max_lora_rank 16.', code: 400 }) };
    const error = await failure(client.load('r-round-1', '/x'));
    expect(error).toBeInstanceOf(StageFailedError);
    expect(error!.message).toBe(
      `inference engine at ${vllm.baseUrl}: POST /load_lora_adapter (lora_name 'r-round-1'): 400 LoRA rank 64 is greater than max_lora_rank 16.`,
    );
    expect(error!.serviceUnavailable).toBe(false);
    const missing = await failure(client.unload('nope'));
    expect(missing!.message).toContain("404 The lora adapter 'nope' cannot be found.");
  });

  it('marks an engine that does not answer as unavailable (the coordinator resumes such a run itself)', async () => {
    const url = vllm.baseUrl;
    await vllm.close();
    vllm = new FakeVllm();
    await vllm.start();
    const error = await failure(new EngineClient(url).models());
    expect(error).toBeInstanceOf(StageFailedError);
    expect(error!.message).toMatch(new RegExp(`^inference engine at ${url.replace(/[.]/g, '\\.')}: GET /models: no answer`));
    expect(error!.serviceUnavailable).toBe(true);
  });

  it('a cancelled run stops waiting with StageAbortedError', async () => {
    const controller = new AbortController();
    controller.abort('cancelled');
    await expect(new EngineClient(vllm.baseUrl).models(controller.signal)).rejects.toBeInstanceOf(StageAbortedError);
  });
});

describe('servedPolicy (RunSpec.engine)', () => {
  const model = (round: number, adapter: boolean): ModelRef => {
    const checkpoint = path.join(dir, `round-${round}`, 'checkpoint');
    fs.mkdirSync(path.join(checkpoint, 'adapter'), { recursive: true });
    if (adapter) fs.writeFileSync(path.join(checkpoint, 'adapter', 'adapter_config.json'), '{}');
    return { hfCheckpoint: { uri: fileUri(checkpoint), sha256: 'a', sizeBytes: 0 }, onnx: { uri: fileUri(path.join(dir, `round-${round}`, 'onnx')), sha256: 'b', sizeBytes: 0 } };
  };
  const context = (weights: EngineWeights, extra: Partial<RunSpec> = {}): StageContext =>
    ({
      runId: 'run.1',
      spec: RunSpec.fromPartial({
        baseModel: { onnx: { uri: 'file:///m/onnx' } },
        engine: { baseUrl: vllm.baseUrl, referenceModel: 'pi-init', weights },
        ...extra,
      }),
      executors: { engine: (url: string) => new EngineClient(url) } as unknown as StageExecutors,
      call: { signal: new AbortController().signal, onProgress: () => undefined, label: 'round 2 GENERATE' },
    }) as unknown as StageContext;

  it("loads the round's LoRA adapter once, by name, and unloads this run's earlier policies", async () => {
    const ctx = context(EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER);
    vllm.served.add('run.1-round-0').add('other-round-0').add('run-1-round-0');
    const ref = await servedPolicy(ctx, 1, model(1, true));
    expect(ref.openai).toEqual({ baseUrl: vllm.baseUrl, model: 'run.1-round-1' });
    expect(ref.onnx!.uri).toBe(fileUri(path.join(dir, 'round-1', 'onnx'))); // the tokenizer stays local
    await servedPolicy(ctx, 1, model(1, true)); // listed now: not loaded again
    const posts = vllm.received.filter((r) => r.method === 'POST').map((r) => [r.url, r.body]);
    expect(posts).toEqual([
      ['/v1/load_lora_adapter', { lora_name: 'run.1-round-1', lora_path: path.join(dir, 'round-1', 'checkpoint', 'adapter') }],
      ['/v1/unload_lora_adapter', { lora_name: 'run.1-round-0' }],
    ]);
    expect([...vllm.served].sort()).toEqual(['other-round-0', 'pi-init', 'run-1-round-0', 'run.1-round-1']);
  });

  it("keeps round 0's policy with a frozen judge, and loads the ONNX export for the generator's endpoint", async () => {
    vllm.served.add('run.1-round-0').add('run.1-round-1');
    const ref = await servedPolicy(context(EngineWeights.ENGINE_WEIGHTS_ONNX_EXPORT, { frozenJudge: true }), 2, model(2, false));
    expect(ref.openai!.model).toBe('run.1-round-2');
    expect(vllm.received.find((r) => r.url === '/v1/load_lora_adapter')!.body).toEqual({ lora_name: 'run.1-round-2', lora_path: path.join(dir, 'round-2', 'onnx') });
    expect([...vllm.served].sort()).toEqual(['pi-init', 'run.1-round-0', 'run.1-round-2']);
  });

  it('fails, naming the directory, when a LoRA run has no adapter; and π_init goes to engine.reference_model', async () => {
    const error = await failure(servedPolicy(context(EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER), 1, model(1, false)));
    expect(error!.message).toBe(`round 1's checkpoint has no LoRA adapter at ${path.join(dir, 'round-1', 'checkpoint', 'adapter')} (engine.weights ENGINE_WEIGHTS_LORA_ADAPTER needs LoRA training)`);
    expect(vllm.received.filter((r) => r.method === 'POST')).toEqual([]);
    expect(referenceModel(context(EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER).spec)).toEqual({ onnx: { uri: 'file:///m/onnx', sha256: '', sizeBytes: 0 }, openai: { baseUrl: vllm.baseUrl, model: 'pi-init' } });
    expect(policyModelName('r', 3)).toBe('r-round-3');
  });

  it('without spec.engine, the model is sent as it is and nothing is asked of an engine', async () => {
    const m = model(1, false);
    expect(await servedPolicy({ ...context(EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER), spec: RunSpec.fromPartial({}) }, 1, m)).toBe(m);
    expect(vllm.received).toEqual([]);
  });
});
