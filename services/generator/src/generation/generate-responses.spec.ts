import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { ArtifactStore, readJsonl } from '@alignment/artifacts';
import { checkRecord, PromptEncoding } from '@alignment/contracts';
import { CancelledError, InvalidArgumentError } from '@alignment/errors';
import { causalModelCache, generate, PAPER_SAMPLING, type CausalModel, type LanguageModel, type ModelCache, type OpenAiEndpoint } from '@alignment/lm';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { resolveSamplingParams } from './params';
import { generateResponses, type GenerationJob, type GenerationProgress, type ResponsesRecord } from './generate-responses';

let models: TinyModels;
let cache: ModelCache<CausalModel, OpenAiEndpoint>;
let dir: string;
let store: ArtifactStore;

beforeAll(async () => {
  models = await tinyModels();
  cache = causalModelCache(2);
}, TINY_MODELS_TIMEOUT_MS);
afterAll(() => cache.clear());
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-'));
  store = new ArtifactStore(path.join(dir, 'store'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const DATA = path.resolve(__dirname, '../../../../examples/data');
const PROMPTS = ['What colour is the sky?', 'Two plus two?', 'Answer briefly.', 'Hi', 'Say something nice.'];

function job(overrides: Partial<GenerationJob> = {}): GenerationJob {
  return {
    model: { uri: models.policy, sha256: '' },
    prompts: { kind: 'inline', prompts: PROMPTS },
    params: { n: 2, topK: 0, maxNewTokens: 12, stop: [], seed: 42, greedy: false },
    shard: undefined,
    outputUri: '',
    ...overrides,
  };
}

async function records(file: string): Promise<ResponsesRecord[]> {
  const out: ResponsesRecord[] = [];
  for await (const { value } of readJsonl(file)) out.push(checkRecord<ResponsesRecord>('ResponsesRecord', value)); // formats.proto
  return out;
}

async function invalidField(j: GenerationJob): Promise<string> {
  const error = await generateResponses(j, { models: cache, store }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidArgumentError);
  return (error as InvalidArgumentError).field;
}

describe('generateResponses: prompt encoding (RunSpec.prompt_encoding) and conversational prompt sets', () => {
  /** The greedy text `model` continues `promptIds` with: what the generator must write for the prompt. */
  async function greedyText(promptIds: (m: LanguageModel) => number[], maxNewTokens: number, modelDir = models.policy): Promise<string> {
    const lease = await cache.acquire(modelDir);
    try {
      const m = lease.value as LanguageModel;
      for await (const [result] of generate(m, [{ index: 0, promptIds: promptIds(m) }], { ...PAPER_SAMPLING, greedy: true, n: 1, maxNewTokens })) return result.samples[0].text;
      throw new Error('no generation');
    } finally {
      lease.release();
    }
  }
  const greedy = (prompt: string, promptEncoding?: PromptEncoding, modelDir = models.policy) =>
    job({ model: { uri: modelDir, sha256: '' }, prompts: { kind: 'inline', prompts: [prompt] }, params: { n: 1, topK: 0, maxNewTokens: 12, stop: [], seed: 0, greedy: true }, promptEncoding });

  it('samples a string prompt as raw text by default, and through the chat template with PROMPT_ENCODING_CHAT_TEMPLATE', async () => {
    const prompt = 'What colour is the sky?';
    const raw = await greedyText((m) => m.tokenizer.encodeText(prompt), 12);
    const templated = await greedyText((m) => m.tokenizer.encodePrompt(prompt, { strings: 'chat-template' }), 12);
    expect(raw).not.toBe(templated);
    const written = async (encoding?: PromptEncoding) => (await records((await generateResponses(greedy(prompt, encoding), { models: cache, store })).responses.path))[0];
    expect((await written()).responses).toEqual([raw]);
    expect((await written(PromptEncoding.PROMPT_ENCODING_RAW_TEXT)).responses).toEqual([raw]);
    expect((await written(PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE)).responses).toEqual([templated]);
    expect(await invalidField(greedy(prompt, 9 as PromptEncoding))).toBe('prompt_encoding');
  });

  it('samples a multi-turn conversation through the template and writes it, turn for turn, as the record’s prompt', async () => {
    const file = path.join(DATA, 'prompts-multi-turn.jsonl');
    const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const outcome = await generateResponses(
      job({ prompts: { kind: 'artifact', uri: file, sha256 }, params: { n: 1, topK: 0, maxNewTokens: 12, stop: [], seed: 0, greedy: true } }),
      { models: cache, store },
    );
    const [first] = await records(outcome.responses.path);
    const turns = [
      { role: 'system', content: 'You answer in one word.' },
      { role: 'user', content: 'Name a planet.' },
      { role: 'assistant', content: 'Mars.' },
      { role: 'user', content: 'Another one?' },
    ];
    expect(first).toMatchObject({ prompt_index: 0, id: 'm-1', prompt: turns });
    expect(first.responses).toEqual([await greedyText((m) => m.tokenizer.encodePrompt(turns, { strings: 'raw-text' }), 12)]);
  });

  it('takes a model without a chat template with raw text, and refuses the template naming prompt_encoding', async () => {
    const bare = path.join(dir, 'bare');
    fs.cpSync(models.policy, bare, { recursive: true });
    fs.rmSync(path.join(bare, 'chat_template.jinja'));
    const configPath = path.join(bare, 'tokenizer_config.json');
    const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as { chat_template?: unknown };
    delete config.chat_template;
    fs.writeFileSync(configPath, JSON.stringify(config));
    const prompt = 'What colour is the sky?';
    const outcome = await generateResponses(greedy(prompt, undefined, bare), { models: cache, store });
    expect((await records(outcome.responses.path))[0].responses).toEqual([await greedyText((m) => m.tokenizer.encodeText(prompt), 12, bare)]);
    expect(await invalidField(greedy(prompt, PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE, bare))).toBe('prompt_encoding');
    // A conversational prompt set needs the template too: refused naming the set and the line.
    const file = path.join(DATA, 'prompts-multi-turn.jsonl');
    const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const error = await generateResponses(job({ model: { uri: bare, sha256: '' }, prompts: { kind: 'artifact', uri: file, sha256 } }), { models: cache, store }).catch((e: unknown) => e);
    expect(error).toMatchObject({ field: `prompt_set (${file}:1)`, reason: expect.stringContaining('is a conversation (message list), which is rendered with the chat template') });
  });
});

describe('generateResponses', () => {
  it('writes n responses per prompt, in prompt order, as a JSONL artifact with its sha256, and reports progress', async () => {
    const progress: GenerationProgress[] = [];
    const outcome = await generateResponses(job(), { models: cache, store, batchRows: 4 }, { onProgress: (p) => progress.push(p) });
    const file = outcome.responses.path;
    expect(path.dirname(file)).toBe(path.join(store.root, 'responses'));
    expect(outcome.responses.sha256).toBe(createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    expect(outcome.responses.uri).toBe(`file://${file}`);
    const lines = await records(file);
    expect(lines.map((r) => [r.prompt_index, r.prompt])).toEqual(PROMPTS.map((p, i) => [i, p]));
    for (const r of lines) {
      expect(r.responses).toHaveLength(2);
      expect(r.finish_reasons).toHaveLength(2);
      for (const reason of r.finish_reasons) expect(['stop', 'length']).toContain(reason);
    }
    expect(outcome).toMatchObject({ numPrompts: 5, numResponses: 10 });
    expect(outcome.numGeneratedTokens).toBeGreaterThan(10);
    expect(outcome.numGeneratedTokens).toBeLessThanOrEqual(10 * 12);
    // Two prompts per batch of 4 rows: progress after each batch.
    expect(progress.map((p) => p.done)).toEqual([2, 4, 5]);
    expect(progress.every((p) => p.total === 5 && p.tokensPerSecond > 0)).toBe(true);
    expect(progress[progress.length - 1].etaSeconds).toBe(0);
  });

  it('shards select prompts i % count == index; merging the shards by prompt_index gives the unsharded result', async () => {
    const whole = await records((await generateResponses(job(), { models: cache, store })).responses.path);
    const shards = [];
    for (const index of [0, 1]) {
      const out = await generateResponses(job({ shard: { index, count: 2 } }), { models: cache, store });
      const lines = await records(out.responses.path);
      expect(lines.map((r) => r.prompt_index)).toEqual(index === 0 ? [0, 2, 4] : [1, 3]);
      shards.push(...lines);
    }
    expect(shards.sort((a, b) => a.prompt_index - b.prompt_index)).toEqual(whole);
  });

  it('reads a prompts JSONL artifact (verifying its sha256), carries ids, and writes to output_uri atomically', async () => {
    const set = path.join(dir, 'prompts.jsonl');
    fs.writeFileSync(set, PROMPTS.slice(0, 2).map((prompt, i) => JSON.stringify({ id: `p${i}`, prompt })).join('\n') + '\n');
    const sha256 = createHash('sha256').update(fs.readFileSync(set)).digest('hex');
    const out = path.join(dir, 'out', 'responses.jsonl');
    const outcome = await generateResponses(job({ prompts: { kind: 'artifact', uri: `file://${set}`, sha256 }, outputUri: out }), { models: cache, store });
    expect(outcome.responses.path).toBe(out);
    expect((await records(out)).map((r) => r.id)).toEqual(['p0', 'p1']);
    expect(fs.readdirSync(path.dirname(out))).toEqual(['responses.jsonl']);
  });

  it('uses the paper’s defaults for unset parameters (2 samples, temperature 0.7, top_p 1, 300 new tokens)', () => {
    expect(resolveSamplingParams(undefined)).toEqual({ n: 2, temperature: 0.7, topP: 1, topK: 0, maxNewTokens: 300, stop: [], seed: 0n, greedy: false });
    expect(resolveSamplingParams({ n: 0, topK: 0, maxNewTokens: 0, stop: [], seed: 5, greedy: false, temperature: 0 })).toMatchObject({ n: 2, temperature: 0, seed: 5n });
  });

  it('refuses bad input with INVALID_ARGUMENT naming the field', async () => {
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"prompt": "ok"}\n{"prompt": 3}\n');
    const empty = path.join(dir, 'empty.jsonl');
    fs.writeFileSync(empty, '\n');
    const longPrompt = 'x'.repeat(300);
    expect(await invalidField(job({ prompts: { kind: 'inline', prompts: [] } }))).toBe('inline_prompts.prompts');
    expect(await invalidField(job({ prompts: undefined }))).toBe('prompts');
    expect(await invalidField(job({ prompts: { kind: 'inline', prompts: ['ok', ' '] } }))).toBe('inline_prompts.prompts[1]');
    expect(await invalidField(job({ prompts: { kind: 'inline', prompts: ['ok', longPrompt] } }))).toBe('inline_prompts.prompts[1]');
    expect(await invalidField(job({ prompts: { kind: 'artifact', uri: bad, sha256: '' } }))).toBe('prompt_set');
    expect(await invalidField(job({ prompts: { kind: 'artifact', uri: empty, sha256: '' } }))).toBe('prompt_set');
    expect(await invalidField(job({ prompts: { kind: 'artifact', uri: path.join(dir, 'none.jsonl'), sha256: '' } }))).toBe('prompt_set.uri');
    expect(await invalidField(job({ prompts: { kind: 'artifact', uri: bad, sha256: 'a'.repeat(64) } }))).toBe('prompt_set.sha256');
    expect(await invalidField(job({ params: { n: 2, topP: 1.5, topK: 0, maxNewTokens: 5, stop: [], seed: 0, greedy: false } }))).toBe('params.top_p');
    expect(await invalidField(job({ params: { n: 2, temperature: -0.5, topK: 0, maxNewTokens: 5, stop: [], seed: 0, greedy: false } }))).toBe('params.temperature');
    expect(await invalidField(job({ params: { n: 1000, topK: 0, maxNewTokens: 5, stop: [], seed: 0, greedy: false } }))).toBe('params.n');
    expect(await invalidField(job({ model: undefined }))).toBe('model.onnx.uri');
    expect(await invalidField(job({ model: { uri: path.join(dir, 'no-model'), sha256: '' } }))).toBe('model.onnx.uri');
    expect(await invalidField(job({ model: { uri: models.policyCheckpoint, sha256: '' } }))).toBe('model.onnx.uri');
    expect(await invalidField(job({ model: { uri: models.policy, sha256: 'b'.repeat(64) } }))).toBe('model.onnx.sha256');
    expect(await invalidField(job({ shard: { index: 2, count: 2 } }))).toBe('shard.index');
    expect(await invalidField(job({ outputUri: 'gs://bucket/key' }))).toBe('output_uri');
    // Nothing was written by any of them.
    expect(fs.existsSync(store.root)).toBe(false);
  });

  it('verifies a model against the sha256 of its manifest', async () => {
    const sha256 = createHash('sha256').update(fs.readFileSync(path.join(models.policy, 'manifest.json'))).digest('hex');
    const outcome = await generateResponses(job({ model: { uri: `file://${models.policy}`, sha256 }, params: { n: 1, topK: 0, maxNewTokens: 2, stop: [], seed: 0, greedy: true } }), { models: cache, store });
    expect(outcome.numResponses).toBe(PROMPTS.length);
  });

  it('stops when the signal aborts and leaves no file behind', async () => {
    const controller = new AbortController();
    const out = path.join(dir, 'cancelled', 'responses.jsonl');
    const run = generateResponses(job({ params: { n: 2, topK: 0, maxNewTokens: 300, stop: [], seed: 1, greedy: false, temperature: 0.01 }, outputUri: out }), { models: cache, store, batchRows: 2 }, {
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await expect(run).rejects.toThrow(CancelledError);
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });
});
