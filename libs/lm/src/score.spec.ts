import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { CancelledError } from '@alignment/errors';
import { LmArgumentError } from './errors';
import { LanguageModel } from './language-model';
import { scoreSequences, type ScoreItem } from './score';

/** docs/architecture.md: the judge's log-probs and the trainer's agree for the same checkpoint. */
const PARITY_NATS = 1e-3;

let models: TinyModels;
let policy: LanguageModel;
let reference: LanguageModel;

beforeAll(async () => {
  models = await tinyModels();
  policy = await LanguageModel.load(models.policy);
  reference = await LanguageModel.load(models.reference);
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  await policy?.release();
  await reference?.release();
});

function items(model: LanguageModel, name: 'policy' | 'reference'): ScoreItem[] {
  return models.values.scores[name].map((ref) => ({
    promptIds: model.tokenizer.encodePrompt(ref.prompt, { strings: 'chat-template' }),
    responseIds: model.tokenizer.encodeResponse(ref.response),
  }));
}

describe('sequence log-probs', () => {
  it.each(['policy', 'reference'] as const)(
    'equal PyTorch (the trainer’s sequence_logps) within 1e-3 nats per sequence, per token too: %s',
    async (name) => {
      const model = name === 'policy' ? policy : reference;
      const refs = models.values.scores[name];
      const batch = items(model, name);
      batch.forEach((item, i) => {
        expect(item.promptIds).toEqual(refs[i].prompt_ids);
        expect(item.responseIds).toEqual(refs[i].response_ids);
      });
      const scores = await scoreSequences(model, batch);
      scores.forEach((score, i) => {
        expect(Math.abs(score.logp - refs[i].logp)).toBeLessThan(PARITY_NATS);
        expect(score.tokenLogps).toHaveLength(refs[i].token_logps.length);
        score.tokenLogps.forEach((v, t) => expect(Math.abs(v - refs[i].token_logps[t])).toBeLessThan(1e-4));
      });
    },
  );

  it('of unfinished responses (no EOS) equal PyTorch’s within 1e-3 nats: the trainer’s chosen_finished = false', async () => {
    const refs = models.values.scores_unfinished.policy;
    expect(refs.length).toBeGreaterThan(0);
    const batch = refs.map((ref) => ({
      promptIds: policy.tokenizer.encodePrompt(ref.prompt, { strings: 'chat-template' }),
      responseIds: policy.tokenizer.encodeResponse(ref.response, { finished: false }),
    }));
    batch.forEach((item, i) => expect(item.responseIds).toEqual(refs[i].response_ids));
    const scores = await scoreSequences(policy, batch);
    scores.forEach((score, i) => {
      expect(Math.abs(score.logp - refs[i].logp)).toBeLessThan(PARITY_NATS);
      expect(score.tokenLogps).toHaveLength(refs[i].token_logps.length);
    });
  });

  it('of raw-text prompts equal PyTorch’s within 1e-3 nats, on the trainer’s own raw-text prompt ids (no template token)', async () => {
    const refs = models.values.scores_raw.policy;
    expect(refs.length).toBeGreaterThan(0);
    const batch = refs.map((ref) => ({
      promptIds: policy.tokenizer.encodePrompt(ref.prompt, { strings: 'raw-text' }),
      responseIds: policy.tokenizer.encodeResponse(ref.response),
    }));
    batch.forEach((item, i) => {
      expect(item.promptIds).toEqual(refs[i].prompt_ids);
      expect(item.promptIds).toEqual(policy.tokenizer.encodeText(refs[i].prompt));
    });
    const templated = models.values.scores.policy;
    const scores = await scoreSequences(policy, batch);
    scores.forEach((score, i) => {
      expect(templated[i].prompt).toBe(refs[i].prompt);
      expect(templated[i].prompt_ids.length).toBeGreaterThan(refs[i].prompt_ids.length);
      expect(Math.abs(score.logp - refs[i].logp)).toBeLessThan(PARITY_NATS);
      expect(Math.abs(score.logp - templated[i].logp)).toBeGreaterThan(PARITY_NATS);
    });
  });

  it('do not depend on batching or on how positions are chunked (a logits budget of one position per call)', async () => {
    const batch = items(policy, 'policy');
    const batched = await scoreSequences(policy, batch);
    const tiny = await scoreSequences(policy, batch, { maxBatchRows: 3, maxLogitsElements: 3 * policy.vocabSize });
    const single = await Promise.all(batch.map((item) => scoreSequences(policy, [item], { maxLogitsElements: 5 * policy.vocabSize })));
    batched.forEach((score, i) => {
      expect(Math.abs(tiny[i].logp - score.logp)).toBeLessThan(1e-4);
      expect(Math.abs(single[i][0].logp - score.logp)).toBeLessThan(1e-4);
    });
  });

  it('reports progress and stops when the signal aborts', async () => {
    const batch = items(policy, 'policy');
    const progress: number[] = [];
    await scoreSequences(policy, batch, { maxBatchRows: 2, onProgress: (done) => progress.push(done) });
    expect(progress).toEqual([2, 4, 6, 7]);
    const controller = new AbortController();
    const run = scoreSequences(policy, batch, { maxBatchRows: 1, signal: controller.signal, onProgress: () => controller.abort() });
    await expect(run).rejects.toThrow(CancelledError);
  });

  it('refuses, naming the item, a sequence longer than the context or an empty response', async () => {
    const long = { promptIds: [3, 4], responseIds: new Array(policy.maxPositions).fill(5) };
    await expect(scoreSequences(policy, [items(policy, 'policy')[0], long])).rejects.toThrow(
      new LmArgumentError('items[1]', `prompt + response are ${policy.maxPositions + 2} tokens, more than the model's context of ${policy.maxPositions}`),
    );
    await expect(scoreSequences(policy, [{ promptIds: [3], responseIds: [] }])).rejects.toThrow(/invalid items\[0\]: the response has no tokens/);
  });
});
