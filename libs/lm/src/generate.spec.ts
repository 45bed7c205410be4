import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { CancelledError } from '@alignment/errors';
import { LmArgumentError } from './errors';
import { generate, type PromptGeneration, type PromptToGenerate, type GenerateOptions } from './generate';
import { LanguageModel } from './language-model';
import { PAPER_SAMPLING, type SamplingParams } from './sampling';

let models: TinyModels;
let model: LanguageModel;

beforeAll(async () => {
  models = await tinyModels();
  model = await LanguageModel.load(models.policy);
}, TINY_MODELS_TIMEOUT_MS);
afterAll(() => model?.release());

const PROMPTS = ['What colour is the sky?', 'Two plus two?', 'Answer the question briefly and politely.', 'Hi', 'A longer prompt, so the batch is padded: the sky is blue and the grass is green.'];

function prompts(texts = PROMPTS): PromptToGenerate[] {
  return texts.map((text, index) => ({ index, promptIds: model.tokenizer.encodePrompt(text, { strings: 'chat-template' }) }));
}

async function collect(items: PromptToGenerate[], params: Partial<SamplingParams>, options: GenerateOptions = {}): Promise<PromptGeneration[]> {
  const out: PromptGeneration[] = [];
  for await (const batch of generate(model, items, { ...PAPER_SAMPLING, ...params }, options)) out.push(...batch);
  return out;
}

describe('generation', () => {
  it('greedy decoding reproduces Hugging Face generate token for token, batched with left padding', async () => {
    const refs = models.values.greedy;
    const out = await collect(prompts(refs.map((r) => r.prompt)), { greedy: true, n: 1, maxNewTokens: refs[0].max_new_tokens });
    out.forEach((result, i) => expect(result.samples[0].tokenIds).toEqual(refs[i].ids));
  });

  it('feeds prompts in chunks of positions without changing the result', async () => {
    const refs = models.values.greedy;
    const items = prompts(refs.map((r) => r.prompt));
    const chunked = await collect(items, { greedy: true, n: 1, maxNewTokens: refs[0].max_new_tokens }, { prefillChunk: 2 });
    chunked.forEach((result, i) => expect(result.samples[0].tokenIds).toEqual(refs[i].ids));
  });

  it('the same seed gives the same samples whatever the batch size; another seed gives others', async () => {
    const params = { seed: 1234n, maxNewTokens: 20 };
    const wide = await collect(prompts(), params, { maxBatchRows: 32 });
    const narrow = await collect(prompts(), params, { maxBatchRows: 2 });
    const again = await collect(prompts(), params);
    expect(narrow).toEqual(wide);
    expect(again).toEqual(wide);
    const other = await collect(prompts(), { ...params, seed: 1235n });
    expect(other.map((r) => r.samples.map((s) => s.text))).not.toEqual(wide.map((r) => r.samples.map((s) => s.text)));
    // n samples per prompt are drawn independently.
    expect(wide.every((r) => r.samples.length === 2)).toBe(true);
    expect(wide.some((r) => r.samples[0].text !== r.samples[1].text)).toBe(true);
    // A prompt's samples depend on its index in the prompt set, not on its neighbours (what sharding relies on).
    const alone = await collect([prompts()[3]], params);
    expect(alone[0]).toEqual(wide[3]);
  });

  it('stops at max_new_tokens (finish "length"), at EOS and at stop strings (finish "stop", text cut before it)', async () => {
    const short = await collect(prompts(), { n: 3, maxNewTokens: 5, seed: 7n });
    for (const r of short) for (const s of r.samples) {
      expect(s.tokenIds.length).toBeLessThanOrEqual(5);
      if (s.finishReason === 'length') expect(s.tokenIds).toHaveLength(5);
      else expect(s.tokenIds[s.tokenIds.length - 1]).toBe(model.tokenizer.eosTokenId);
    }
    // Make EOS the likeliest token: at a high temperature a random tiny model reaches it quickly.
    const hot = await collect(prompts(), { n: 4, maxNewTokens: 200, temperature: 3, seed: 3n });
    const stopped = hot.flatMap((r) => r.samples).filter((s) => s.finishReason === 'stop');
    expect(stopped.length).toBeGreaterThan(0);
    for (const s of stopped) {
      expect(s.tokenIds[s.tokenIds.length - 1]).toBe(model.tokenizer.eosTokenId);
      expect(model.tokenizer.decode(s.tokenIds)).toBe(s.text);
    }
    // A stop string taken from the middle of an unconstrained sample cuts the text right before it.
    const free = (await collect(prompts().slice(0, 1), { n: 1, maxNewTokens: 40, seed: 11n }))[0].samples[0];
    const stop = free.text.slice(10, 13);
    const cut = (await collect(prompts().slice(0, 1), { n: 1, maxNewTokens: 40, seed: 11n, stop: [stop] }))[0].samples[0];
    expect(cut.finishReason).toBe('stop');
    expect(cut.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(cut.tokenIds.length).toBeLessThan(free.tokenIds.length);
  });

  it('top_k = 1 and a tiny top_p are argmax decoding', async () => {
    const greedy = await collect(prompts(), { greedy: true, n: 1, maxNewTokens: 8 });
    const topK = await collect(prompts(), { topK: 1, n: 1, maxNewTokens: 8, seed: 5n });
    const topP = await collect(prompts(), { topP: 1e-6, n: 1, maxNewTokens: 8, seed: 5n });
    expect(topK.map((r) => r.samples[0].tokenIds)).toEqual(greedy.map((r) => r.samples[0].tokenIds));
    expect(topP.map((r) => r.samples[0].tokenIds)).toEqual(greedy.map((r) => r.samples[0].tokenIds));
  });

  it('ends a sample at the context length (finish "length")', async () => {
    const room = 5;
    const promptIds = new Array(model.maxPositions - room).fill(model.tokenizer.encodeText('x')[0]);
    const [result] = await collect([{ index: 0, promptIds }], { greedy: true, n: 1, maxNewTokens: 300 });
    expect(result.samples[0].finishReason).toBe('length');
    expect(result.samples[0].tokenIds).toHaveLength(room);
  });

  it('stops within a step when the signal aborts', async () => {
    const controller = new AbortController();
    const run = collect(prompts(), { maxNewTokens: 300, temperature: 0.01 }, { signal: controller.signal, maxBatchRows: 2 });
    setTimeout(() => controller.abort(), 20);
    const started = Date.now();
    await expect(run).rejects.toThrow(CancelledError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('refuses invalid parameters and prompts, naming the field', async () => {
    const cases: [Partial<SamplingParams>, string][] = [
      [{ n: 0 }, 'n'],
      [{ temperature: -1 }, 'temperature'],
      [{ topP: 0 }, 'top_p'],
      [{ topP: 1.5 }, 'top_p'],
      [{ maxNewTokens: 0 }, 'max_new_tokens'],
      [{ stop: ['ok', ''] }, 'stop[1]'],
    ];
    for (const [params, field] of cases) {
      await expect(collect(prompts(), params)).rejects.toMatchObject({ name: 'LmArgumentError', field });
    }
    const tooLong = { index: 7, promptIds: new Array(model.maxPositions).fill(5) };
    await expect(collect([prompts()[0], tooLong], {})).rejects.toThrow(LmArgumentError);
    await expect(collect([prompts()[0], tooLong], {})).rejects.toMatchObject({ field: 'prompts[7]' });
  });
});
