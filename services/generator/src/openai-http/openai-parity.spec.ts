// The generator's /v1 endpoint on loopback, and libs/lm's OpenAI backend pointed at it, against ONNX Runtime direct.
import OpenAI from 'openai';
import { acquireCausalModel, causalModelCache, generate, LanguageModel, OpenAiBackendError, OpenAiLanguageModel, PAPER_SAMPLING, type LmArgumentError } from '@alignment/lm';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { startOpenAiServer, type RunningOpenAiServer } from './http-server';
import { compareBackends } from './parity';

let models: TinyModels;
let server: RunningOpenAiServer;
let onnx: LanguageModel;
const serverCache = causalModelCache(2);
const localCache = causalModelCache(3);

beforeAll(async () => {
  models = await tinyModels();
  server = await startOpenAiServer({
    port: 0,
    models: new Map([
      ['policy', models.policy],
      ['reference', models.reference],
    ]),
    cache: serverCache,
    maxBodyBytes: 64 * 1024,
  });
  onnx = await LanguageModel.load(models.policy);
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  await server?.close();
  await onnx?.release();
  await serverCache.clear();
  await localCache.clear();
});

const PROMPTS = ['What colour is the sky?', 'Two plus two?', 'Say something nice.'];

async function post(route: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.baseUrl}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

describe('OpenAI backend against the generator /v1 endpoint', () => {
  it('samples the same tokens (greedy and seeded) and scores within 1e-3 nats of ONNX Runtime', async () => {
    const remote = await OpenAiLanguageModel.load(models.policy, { baseUrl: server.baseUrl, model: 'policy' });
    const report = await compareBackends(onnx, remote, PROMPTS, { ...PAPER_SAMPLING, n: 3, temperature: 1.2, topP: 0.95, maxNewTokens: 12, seed: 11n });
    expect(report.mismatches).toEqual([]);
    expect(report.samples).toBe(PROMPTS.length * 4);
    expect(report.scored).toBeGreaterThan(PROMPTS.length * 2);
    expect(report.maxLogpDiff).toBeLessThan(1e-3);
  });

  it('routes a ModelRef with openai set to the server: the reference model scores as the reference, not the policy', async () => {
    const lease = await acquireCausalModel(localCache, { uri: models.reference, sha256: '', openai: { baseUrl: server.baseUrl, model: 'reference' } }, 'model');
    const ref = models.values.scores.reference[0];
    try {
      expect(lease.value).toBeInstanceOf(OpenAiLanguageModel);
      const [score] = await (lease.value as OpenAiLanguageModel).score([{ promptIds: ref.prompt_ids, responseIds: ref.response_ids }]);
      // PyTorch's value for this item (tools/testing/make_tiny_model.py), through HTTP and the ONNX export.
      expect(Math.abs(score.logp - ref.logp)).toBeLessThan(1e-3);
      expect(Math.abs(score.logp - models.values.scores.policy[0].logp)).toBeGreaterThan(1e-3);
    } finally {
      lease.release();
    }
  });

  it('names a bad endpoint field, and reports an unknown served model', async () => {
    const field = (ref: { baseUrl: string; model: string }) =>
      acquireCausalModel(localCache, { uri: models.policy, sha256: '', openai: ref }, 'spa_implicit.policy').then(
        () => undefined,
        (e: unknown) => (e as LmArgumentError).field,
      );
    expect(await field({ baseUrl: 'vllm:8000', model: 'm' })).toBe('spa_implicit.policy.openai.base_url');
    expect(await field({ baseUrl: 'ftp://vllm/v1', model: 'm' })).toBe('spa_implicit.policy.openai.base_url');
    expect(await field({ baseUrl: server.baseUrl, model: ' ' })).toBe('spa_implicit.policy.openai.model');
    const missing = await OpenAiLanguageModel.load(models.policy, { baseUrl: server.baseUrl, model: 'nope' });
    await expect(missing.score([{ promptIds: [1, 2], responseIds: [3] }])).rejects.toThrow(OpenAiBackendError);
    await expect(missing.score([{ promptIds: [1, 2], responseIds: [3] }])).rejects.toThrow(/404.*'nope' does not exist/);
  });
});

describe('/v1 endpoint', () => {
  it('echoes prompt log-probs with max_tokens 0 (the vLLM way to score), first token null', async () => {
    const ids = [...onnx.tokenizer.encodePrompt(PROMPTS[0], { strings: 'chat-template' }), ...onnx.tokenizer.encodeResponse('Blue.')];
    const { status, json } = await post('/completions', { model: 'policy', prompt: ids, max_tokens: 0, echo: true, logprobs: 0, return_tokens_as_token_ids: true });
    expect(status).toBe(200);
    const lp = json.choices[0].logprobs;
    expect(lp.tokens).toEqual(ids.map((id) => `token_id:${id}`));
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.token_logprobs.slice(1).every((v: number) => v < 0)).toBe(true);
    expect(json.choices[0].finish_reason).toBe('length');
    expect(json.usage).toEqual({ prompt_tokens: ids.length, completion_tokens: 0, total_tokens: ids.length });
  });

  it('chat completions through the official client: n choices, the same seed gives the same choices, finish reasons', async () => {
    const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused' });
    const ask = (seed: number) =>
      client.chat.completions.create({ model: 'policy', messages: [{ role: 'user', content: 'Hi' }], n: 3, seed, temperature: 1, max_tokens: 8 });
    const [a, b, c] = [await ask(5), await ask(5), await ask(6)];
    expect(a.choices.map((x) => x.index)).toEqual([0, 1, 2]);
    expect(b.choices.map((x) => x.message.content)).toEqual(a.choices.map((x) => x.message.content));
    expect(c.choices.map((x) => x.message.content)).not.toEqual(a.choices.map((x) => x.message.content));
    for (const x of a.choices) expect(['stop', 'length']).toContain(x.finish_reason);
    expect(a.usage!.completion_tokens).toBeGreaterThan(0);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['policy', 'reference']);
  });

  it('refuses bad fields with 400 naming the field, an unknown model with 404, an oversized body with 413', async () => {
    const param = async (route: string, body: unknown) => {
      const { status, json } = await post(route, body);
      expect(status).toBe(400);
      expect(json.error.type).toBe('invalid_request_error');
      return json.error.param;
    };
    expect(await param('/completions', { prompt: 'x' })).toBe('model');
    expect(await param('/completions', { model: 'policy', prompt: 3 })).toBe('prompt');
    expect(await param('/completions', { model: 'policy', prompt: ['ok', {}] })).toBe('prompt[1]');
    expect(await param('/completions', { model: 'policy', prompt: 'x', temperature: -1 })).toBe('temperature');
    expect(await param('/completions', { model: 'policy', prompt: 'x', top_p: 0 })).toBe('top_p');
    expect(await param('/completions', { model: 'policy', prompt: 'x', n: 0 })).toBe('n');
    expect(await param('/completions', { model: 'policy', prompt: 'x', seed: 1.5 })).toBe('seed');
    expect(await param('/completions', { model: 'policy', prompt: 'x', max_tokens: 0 })).toBe('max_tokens');
    expect(await param('/completions', { model: 'policy', prompt: 'x', logprobs: 5 })).toBe('logprobs');
    expect(await param('/completions', { model: 'policy', prompt: 'x', stop: ['a', ''] })).toBe('stop[1]');
    expect(await param('/completions', { model: 'policy', prompt: 'x', stream: true })).toBe('stream');
    expect(await param('/completions', { model: 'policy', prompt: [10 ** 9] })).toBe('prompt');
    expect(await param('/completions', { model: 'policy', prompt: 'x'.repeat(2000), max_tokens: 1 })).toBe('prompt');
    expect(await param('/completions', '{"model": ')).toBe('body');
    expect(await param('/chat/completions', { model: 'policy', messages: [] })).toBe('messages');
    expect(await param('/chat/completions', { model: 'policy', messages: [{ role: 'robot', content: 'x' }] })).toBe('messages[0].role');
    expect(await param('/chat/completions', { model: 'policy', messages: [{ role: 'user', content: 'x' }], max_completion_tokens: -1 })).toBe('max_completion_tokens');
    const unknown = await post('/completions', { model: 'gpt-4', prompt: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatchObject({ param: 'model', code: 'model_not_found' });
    const big = await post('/completions', { model: 'policy', prompt: 'x'.repeat(70 * 1024) });
    expect(big.status).toBe(413);
    expect(big.json.error.message).toMatch(/71710 bytes; at most 65536/);
  });

  it('greedy completions match ONNX generate() and stop at max_tokens with finish_reason length', async () => {
    const ids = onnx.tokenizer.encodePrompt(PROMPTS[1], { strings: 'chat-template' });
    const { json } = await post('/completions', { model: 'policy', prompt: ids, max_tokens: 3, temperature: 0, logprobs: 0, return_tokens_as_token_ids: true });
    const lease = await localCache.acquire(models.policy);
    try {
      let direct: { tokenIds: number[]; finishReason: string } | undefined;
      for await (const batch of generate(lease.value as LanguageModel, [{ index: 0, promptIds: ids }], { ...PAPER_SAMPLING, n: 1, greedy: true, maxNewTokens: 3 })) direct = batch[0].samples[0];
      expect(json.choices[0].logprobs.tokens).toEqual(direct!.tokenIds.map((id) => `token_id:${id}`));
      expect(json.choices[0].finish_reason).toBe(direct!.finishReason);
    } finally {
      lease.release();
    }
  });
});
