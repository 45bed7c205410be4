// The small pure pieces of the domain: seeds, label noise, the prompt split, the win rate and its interval, and the
// configuration -> trainer loss mapping.
import { AdversarySchedule, Configuration, PreferenceLoss, RunSpec, type PreferenceJob } from '@alignment/contracts';
import { CONFIGURATIONS, dndLambda } from './configurations';
import { preferenceJobSpec } from './job-spec';
import { flipCount, flipLabels } from './label-noise';
import { trainerMetricName, winRate, type Outcome } from './metrics';
import { roundFractions, splitPrompts } from './prompt-split';
import { SeededRandom, deriveSeed } from './seeds';

describe('seeds', () => {
  it('are a pure function of (run seed, round, label), stable across releases', () => {
    // Golden values: changing the derivation would silently change every resumed run's artifacts.
    expect(deriveSeed(7, 1, 'GENERATE')).toBe(GOLDEN_GENERATE_7_1);
    expect(deriveSeed(0, 0, 'LEARN')).toBe(GOLDEN_LEARN_0_0);
  });

  it('differ across rounds, stages and run seeds, and fit in 48 bits', () => {
    const seeds = new Set<number>();
    for (const runSeed of [0, 1, 7])
      for (let round = 0; round < 4; round++)
        for (const label of ['GENERATE', 'JUDGE', 'LEARN', 'EVALUATE', 'label-noise']) {
          const seed = deriveSeed(runSeed, round, label);
          expect(Number.isSafeInteger(seed) && seed >= 0 && seed < 2 ** 48).toBe(true);
          seeds.add(seed);
        }
    expect(seeds.size).toBe(3 * 4 * 5);
  });

  it('SeededRandom repeats per seed and draws uniformly enough', () => {
    const a = new SeededRandom(42).permutation(50);
    expect(new SeededRandom(42).permutation(50)).toEqual(a);
    expect(new SeededRandom(43).permutation(50)).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const rng = new SeededRandom(1);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) counts[rng.int(4)] += 1;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
  });
});

// Computed once from the implementation and frozen here.
const GOLDEN_GENERATE_7_1 = 193804745487493;
const GOLDEN_LEARN_0_0 = 60791907369237;

describe('label noise', () => {
  const pairs = Array.from({ length: 20 }, (_, i) => ({ prompt: `p${i}`, chosen: `c${i}`, rejected: `r${i}`, chosen_score: i, rejected_score: -i }));

  it('flips exactly round(rate · N) pairs, swapping chosen/rejected and their scores, and nothing else', () => {
    for (const rate of [0, 0.1, 0.25, 0.33, 0.45]) {
      const { pairs: noisy, flipped } = flipLabels(pairs, rate, 5);
      expect(flipped).toHaveLength(flipCount(20, rate));
      expect(flipped).toHaveLength(Math.round(rate * 20));
      noisy.forEach((pair, i) => {
        if (flipped.includes(i)) expect(pair).toEqual({ prompt: `p${i}`, chosen: `r${i}`, rejected: `c${i}`, chosen_score: -i, rejected_score: i });
        else expect(pair).toBe(pairs[i]);
      });
    }
  });

  it('is seeded: the same seed flips the same pairs, another seed others', () => {
    expect(flipLabels(pairs, 0.3, 11).flipped).toEqual(flipLabels(pairs, 0.3, 11).flipped);
    expect(flipLabels(pairs, 0.3, 11).flipped).not.toEqual(flipLabels(pairs, 0.3, 12).flipped);
  });

  it('refuses a rate of 0.5 or more (the labels would carry no information)', () => {
    expect(() => flipLabels(pairs, 0.5, 1)).toThrow(/\[0, 0.5\)/);
  });
});

describe('prompt split', () => {
  it('skips the seed fraction and slices rounds in file order with rounded boundaries', () => {
    expect(splitPrompts(100, [0.133, 0.333, 0.5], 0.033).rounds).toEqual([
      [3, 17],
      [17, 50],
      [50, 100],
    ]);
    expect(splitPrompts(10, [0.5, 0.5], 0).rounds).toEqual([
      [0, 5],
      [5, 10],
    ]);
  });

  it("uses the paper's fractions for up to 3 rounds when none are given", () => {
    expect(roundFractions([], 2)).toEqual([0.133, 0.333]);
    expect(roundFractions([], 4)).toBeUndefined();
    expect(roundFractions([0.2, 0.2, 0.2, 0.2], 4)).toEqual([0.2, 0.2, 0.2, 0.2]);
  });
});

describe('win rate', () => {
  it('counts ties as half a win', () => {
    const byPrompt: Outcome[][] = [
      [1, 1, 0.5, 0],
      [0, 0, 0.5, 0.5],
    ];
    const rate = winRate(byPrompt, 1);
    expect(rate.winRate).toBeCloseTo((2 + 0.5 * 3) / 8, 12);
    expect([rate.wins, rate.ties, rate.losses, rate.comparisons]).toEqual([2, 3, 3, 8]);
  });

  it('gives a 95% bootstrap interval over prompts around the estimate, reproducible per seed', () => {
    const byPrompt: Outcome[][] = Array.from({ length: 200 }, (_, i) => [i % 3 === 0 ? 0 : 1, i % 5 === 0 ? 0.5 : 1, i % 2 === 0 ? 1 : 0, 1]);
    const rate = winRate(byPrompt, 3);
    expect(rate.ciLow).toBeLessThan(rate.winRate);
    expect(rate.ciHigh).toBeGreaterThan(rate.winRate);
    expect(rate.ciHigh - rate.ciLow).toBeLessThan(0.12);
    expect(winRate(byPrompt, 3)).toEqual(rate);
  });

  it('resamples whole prompts: correlated samples widen the interval compared with independent ones', () => {
    // Same totals (half wins): in one case every prompt is all-win or all-loss, in the other every prompt is mixed.
    const correlated: Outcome[][] = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? [1, 1, 1, 1] : [0, 0, 0, 0]));
    const mixed: Outcome[][] = Array.from({ length: 100 }, () => [1, 0, 1, 0]);
    const wide = winRate(correlated, 1);
    const narrow = winRate(mixed, 1);
    expect(wide.winRate).toBe(0.5);
    expect(narrow.winRate).toBe(0.5);
    expect(wide.ciHigh - wide.ciLow).toBeGreaterThan(0.15);
    expect(narrow.ciHigh - narrow.ciLow).toBe(0);
  });

  it('names trainer metrics train/… except the spa/ and dro/ families', () => {
    expect(trainerMetricName('rewards/margins')).toBe('train/rewards/margins');
    expect(trainerMetricName('dro/lambda_star')).toBe('dro/lambda_star');
    expect(trainerMetricName('spa/flagged_fraction')).toBe('spa/flagged_fraction');
  });
});

describe('configuration -> trainer loss (one table, configurations.ts)', () => {
  const spec = (configuration: Configuration, loss: RunSpec['loss'] = { dndLambdaSchedule: [] }) =>
    RunSpec.fromPartial({
      configuration,
      rounds: 3,
      loss,
      seedTraining: { learningRate: 1e-5, batchSize: 8 },
      roundTraining: { learningRate: 2e-5, batchSize: 4 },
    });
  const job = (s: RunSpec, round: number): PreferenceJob => {
    const built = preferenceJobSpec({ spec: s, round, init: { uri: 'file:///m', sha256: 'm', sizeBytes: 0 }, pairs: { uri: 'file:///p', sha256: 'p', sizeBytes: 0 }, output: '/out', seed: 9 });
    if (built.kind?.$case !== 'preference') throw new Error('not a preference job');
    return built.kind.value;
  };
  const wdro = { delta: 0.01, radius: { $case: 'rho' as const, value: 0.3 } };

  const table: Array<[Configuration, PreferenceLoss, PreferenceLoss | undefined, number | undefined]> = [
    [Configuration.CONFIGURATION_DPO_SEED, PreferenceLoss.PREFERENCE_LOSS_DPO, undefined, undefined],
    [Configuration.CONFIGURATION_DPO_GOLD, PreferenceLoss.PREFERENCE_LOSS_DPO, undefined, undefined],
    [Configuration.CONFIGURATION_SPA, PreferenceLoss.PREFERENCE_LOSS_DPO, PreferenceLoss.PREFERENCE_LOSS_SPA, 0.25],
    [Configuration.CONFIGURATION_SPA_NO_DND, PreferenceLoss.PREFERENCE_LOSS_DPO, PreferenceLoss.PREFERENCE_LOSS_SPA, 0],
    [Configuration.CONFIGURATION_SPA_NO_SR, PreferenceLoss.PREFERENCE_LOSS_DPO, PreferenceLoss.PREFERENCE_LOSS_DPO, undefined],
    [Configuration.CONFIGURATION_WDRO, PreferenceLoss.PREFERENCE_LOSS_DPO, PreferenceLoss.PREFERENCE_LOSS_WDRO, undefined],
    [Configuration.CONFIGURATION_WDRO_SR, PreferenceLoss.PREFERENCE_LOSS_DPO, PreferenceLoss.PREFERENCE_LOSS_WDRO_SR, 0.25],
    [Configuration.CONFIGURATION_ITER_DPO_RM, PreferenceLoss.PREFERENCE_LOSS_DPO, PreferenceLoss.PREFERENCE_LOSS_DPO, undefined],
    [Configuration.CONFIGURATION_ITER_DPO_JUDGE, PreferenceLoss.PREFERENCE_LOSS_DPO, PreferenceLoss.PREFERENCE_LOSS_DPO, undefined],
    [Configuration.CONFIGURATION_CDPO, PreferenceLoss.PREFERENCE_LOSS_CDPO, undefined, undefined],
    [Configuration.CONFIGURATION_RDPO, PreferenceLoss.PREFERENCE_LOSS_RDPO, undefined, undefined],
    [Configuration.CONFIGURATION_DRDPO, PreferenceLoss.PREFERENCE_LOSS_DRDPO, undefined, undefined],
  ];

  it('covers every configuration', () => {
    expect(table.map(([c]) => c).sort()).toEqual([...CONFIGURATIONS.keys()].sort());
  });

  it.each(table)('%s: round 0 %s, round 2 %s with λ_2 = %s', (configuration, seedLoss, roundLoss, lambda) => {
    const s = spec(configuration, { dndLambdaSchedule: [], wdro: CONFIGURATIONS.get(configuration)!.wdro ? wdro : undefined });
    expect(job(s, 0).loss).toBe(seedLoss);
    expect(job(s, 0).spa).toBeUndefined();
    expect(job(s, 0).wdro).toBeUndefined();
    if (roundLoss === undefined) return;
    const round2 = job(s, 2);
    expect(round2.loss).toBe(roundLoss);
    expect(round2.spa?.dndLambda).toBe(lambda);
    expect(round2.wdro).toEqual(CONFIGURATIONS.get(configuration)!.wdro ? wdro : undefined);
    expect(round2.reference).toEqual(round2.init);
  });

  it('round 0 uses seed_training, rounds use round_training, both with the derived seed; the output is exported to ONNX', () => {
    const s = spec(Configuration.CONFIGURATION_SPA);
    const built = preferenceJobSpec({ spec: s, round: 0, init: { uri: 'file:///m', sha256: '', sizeBytes: 0 }, pairs: { uri: 'file:///p', sha256: '', sizeBytes: 0 }, output: '/out/a', seed: 9 });
    expect(built.hparams).toMatchObject({ learningRate: 1e-5, batchSize: 8, seed: 9 });
    expect(built.exportOnnx).toBe(true);
    expect(built.outputUri).toBe('file:///out/a');
    const later = preferenceJobSpec({ spec: s, round: 1, init: { uri: 'file:///m', sha256: '', sizeBytes: 0 }, pairs: { uri: 'file:///p', sha256: '', sizeBytes: 0 }, output: '/out/b', seed: 10 });
    expect(later.hparams).toMatchObject({ learningRate: 2e-5, batchSize: 4, seed: 10 });
  });

  it('passes the robust-DPO parameters to round 0 only for their losses', () => {
    expect(job(spec(Configuration.CONFIGURATION_CDPO, { dndLambdaSchedule: [], labelSmoothing: 0.2 }), 0).labelSmoothing).toBe(0.2);
    expect(job(spec(Configuration.CONFIGURATION_DRDPO, { dndLambdaSchedule: [], drdpoBetaPrime: 2 }), 0).drdpoBetaPrime).toBe(2);
  });

  it('passes the adversary schedule and group size to the W-DRO rounds only', () => {
    const perRound = { dndLambdaSchedule: [], wdro, adversarySchedule: AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND, adversaryGroupSize: 50 };
    for (const configuration of [Configuration.CONFIGURATION_WDRO, Configuration.CONFIGURATION_WDRO_SR]) {
      const s = spec(configuration, perRound);
      expect(job(s, 1)).toMatchObject({ adversarySchedule: AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND, adversaryGroupSize: 50, wdro });
      expect(job(s, 0).adversarySchedule).toBeUndefined();
      expect(job(s, 0).adversaryGroupSize).toBeUndefined();
    }
    const perStep = job(spec(Configuration.CONFIGURATION_WDRO, { dndLambdaSchedule: [], wdro }), 2);
    expect(perStep.adversarySchedule).toBeUndefined();
    expect(perStep.adversaryGroupSize).toBeUndefined();
    expect(job(spec(Configuration.CONFIGURATION_SPA), 2).adversarySchedule).toBeUndefined();
  });

  it("λ_t follows the schedule (the paper's by default) and keeps its last value past its end", () => {
    expect([1, 2, 3, 4].map((t) => dndLambda([], t))).toEqual([0.5, 0.25, 0.125, 0.125]);
    expect([1, 2, 3].map((t) => dndLambda([0.3], t))).toEqual([0.3, 0.3, 0.3]);
  });
});
