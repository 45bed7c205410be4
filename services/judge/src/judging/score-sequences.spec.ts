import { PromptEncoding } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { causalModelCache } from '@alignment/lm';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { scoreItems } from './score-sequences';

const CHAT_TEMPLATE = PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE;
let models: TinyModels;
const cache = causalModelCache(2);

beforeAll(async () => {
  models = await tinyModels();
}, TINY_MODELS_TIMEOUT_MS);
afterAll(() => cache.clear());

describe('ScoreSequences', () => {
  it.each(['policy', 'reference'] as const)('equals PyTorch within 1e-3 nats per sequence (the trainer parity check): %s', async (name) => {
    const refs = models.values.scores[name];
    const scores = await scoreItems(
      { model: { uri: models[name], sha256: '' }, items: refs.map((r) => ({ prompt: r.prompt, response: r.response })), perToken: true, promptEncoding: CHAT_TEMPLATE },
      cache,
    );
    scores.forEach((s, i) => {
      expect(Math.abs(s.logp - refs[i].logp)).toBeLessThan(1e-3);
      expect(s.numTokens).toBe(refs[i].response_ids.length);
      s.tokenLogps.forEach((v, t) => expect(v).toBeCloseTo(refs[i].token_logps[t], 4));
    });
    const summed = await scoreItems({ model: { uri: models[name], sha256: '' }, items: [{ prompt: refs[0].prompt, response: refs[0].response }], perToken: false }, cache);
    expect(summed[0].tokenLogps).toEqual([]);
  });

  it('encodes prompts as raw text when prompt_encoding is unset, as the trainer’s raw-text scores (scores_raw) do', async () => {
    const refs = models.values.scores_raw.policy;
    const items = refs.map((r) => ({ prompt: r.prompt, response: r.response }));
    const raw = await scoreItems({ model: { uri: models.policy, sha256: '' }, items, perToken: false }, cache);
    const explicit = await scoreItems({ model: { uri: models.policy, sha256: '' }, items, perToken: false, promptEncoding: PromptEncoding.PROMPT_ENCODING_RAW_TEXT }, cache);
    const templated = await scoreItems({ model: { uri: models.policy, sha256: '' }, items, perToken: false, promptEncoding: CHAT_TEMPLATE }, cache);
    raw.forEach((s, i) => {
      expect(Math.abs(s.logp - refs[i].logp)).toBeLessThan(1e-3);
      expect(explicit[i].logp).toBe(s.logp);
      expect(Math.abs(templated[i].logp - s.logp)).toBeGreaterThan(1e-3);
    });
    await expect(scoreItems({ model: { uri: models.policy, sha256: '' }, items, perToken: false, promptEncoding: 5 as PromptEncoding }, cache)).rejects.toMatchObject({
      field: 'prompt_encoding',
      reason: expect.stringContaining('must be PROMPT_ENCODING_RAW_TEXT (the default) or PROMPT_ENCODING_CHAT_TEMPLATE, got 5'),
    });
  });

  it('refuses an empty request and items longer than the context, naming them', async () => {
    const model = { uri: models.policy, sha256: '' };
    await expect(scoreItems({ model, items: [], perToken: false }, cache)).rejects.toThrow(new InvalidArgumentError('items', 'must not be empty'));
    const long = { prompt: 'x', response: 'word '.repeat(300) };
    await expect(scoreItems({ model, items: [{ prompt: 'a', response: 'b' }, long], perToken: false }, cache)).rejects.toMatchObject({ field: 'items[1]' });
    await expect(scoreItems({ model: undefined, items: [long], perToken: false }, cache)).rejects.toMatchObject({ field: 'model.onnx.uri' });
  });
});
