import { AdversarySchedule, RunSpec } from '@alignment/contracts';
import { applyOverrides, checkOverrides } from './overrides';

const BASE = RunSpec.fromPartial({
  name: 'cell',
  seed: 3,
  rounds: 2,
  labelNoiseRate: 0.2,
  prompts: { $case: 'roundPrompts', value: { rounds: [{ uri: '/p/round-1.jsonl', sha256: '', sizeBytes: 0 }] } },
  loss: { beta: 0.25, wdro: { radius: { $case: 'rho', value: 0.1 }, delta: 0.1 }, dndLambdaSchedule: [0.5, 0.25] },
  evaluation: { samplesPerPrompt: 4, rule: 'toyworld/arithmetic' },
});

describe('RunSpec overrides of a variant', () => {
  it('leave the spec alone when there are none', () => {
    expect(applyOverrides(BASE, {})).toBe(BASE);
  });

  it('merge over the spec field by field, in snake_case or lowerCamelCase; lists replace', () => {
    const spec = applyOverrides(BASE, { loss: { wdro: { rho: 0.05 }, dnd_lambda_schedule: [1] }, evaluation: { samplesPerPrompt: 2 } });
    expect(spec.loss).toEqual({ ...BASE.loss, wdro: { radius: { $case: 'rho', value: 0.05 }, delta: 0.1 }, dndLambdaSchedule: [1] });
    expect(spec.evaluation).toEqual({ ...BASE.evaluation, samplesPerPrompt: 2 });
    expect({ ...spec, loss: BASE.loss, evaluation: BASE.evaluation }).toEqual(BASE);
  });

  it('express the W-DRO sweeps of issue 11: δ and the per-round adversary (docs/algorithm.md §7)', () => {
    const overrides = { loss: { wdro: { delta: 0.01 }, adversary_schedule: 'ADVERSARY_SCHEDULE_PER_ROUND', adversary_group_size: 50 } };
    expect(() => checkOverrides(overrides, 'o', Error)).not.toThrow();
    const spec = applyOverrides(BASE, overrides);
    expect(spec.loss).toEqual({
      ...BASE.loss,
      wdro: { radius: { $case: 'rho', value: 0.1 }, delta: 0.01 },
      adversarySchedule: AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND,
      adversaryGroupSize: 50,
    });
  });

  it('accept any RunSpec field, including ones the campaign does not know about', () => {
    expect(() => checkOverrides({ sharding: { generator_shards: 2 }, loss: { label_smoothing: 0.1 } }, 'o', Error)).not.toThrow();
    expect(() => checkOverrides({ loss: { dnd_lambda_schedule: [] } }, 'o', Error)).not.toThrow();
  });
});
