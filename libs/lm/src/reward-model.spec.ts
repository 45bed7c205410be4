import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { RewardModel } from './reward-model';

let models: TinyModels;
let reward: RewardModel;

beforeAll(async () => {
  models = await tinyModels();
  reward = await RewardModel.load(models.reward);
}, TINY_MODELS_TIMEOUT_MS);
afterAll(() => reward?.release());

describe('reward model', () => {
  it('reads (prompt, response) through the chat template and scores as PyTorch does, batched with padding', async () => {
    const refs = models.values.rewards;
    const sequences = refs.map((r) => reward.encode(r.prompt, r.response));
    sequences.forEach((ids, i) => expect(ids).toEqual(refs[i].ids));
    const batched = await reward.score(sequences, { maxBatchRows: 8 });
    const single = await reward.score(sequences, { maxBatchRows: 1 });
    batched.forEach((score, i) => {
      expect(Math.abs(score - refs[i].score)).toBeLessThan(1e-4);
      expect(Math.abs(single[i] - refs[i].score)).toBeLessThan(1e-4);
    });
  });

  it('refuses a sequence longer than the context, naming it', async () => {
    await expect(reward.score([[3, 4], new Array(reward.maxPositions + 1).fill(5)])).rejects.toMatchObject({ field: 'items[1]' });
  });
});
