import { klEstimate, leanings, lengthControlledWinRate, meanWithCi, spread } from './metrics';

const repeat = <T>(n: number, item: T): T[] => Array.from({ length: n }, () => item);

describe('lengthControlledWinRate', () => {
  it('equals the raw win rate when the lengths are equal', () => {
    // raw = (1 + 1 + 1 + 0 + 0.5) / 5 = 0.7
    const items = [1, 1, 1, 0, 0.5].map((outcome) => ({ outcome, lengthDelta: 0 }));
    expect(lengthControlledWinRate(items)).toBeCloseTo(0.7, 9);
  });

  it('equals the raw win rate when every length difference is the same (length effect not identifiable)', () => {
    const items = [1, 0, 1, 1].map((outcome) => ({ outcome, lengthDelta: 37 }));
    expect(lengthControlledWinRate(items)).toBeCloseTo(0.75, 6);
  });

  it('moves toward 0.5 when every win is longer and every loss shorter', () => {
    // raw 0.8; the wins are all explained by length, so at Δ = 0 the policy is much closer to a coin flip
    const items = [...repeat(8, { outcome: 1, lengthDelta: 100 }), ...repeat(2, { outcome: 0, lengthDelta: -100 })];
    const lc = lengthControlledWinRate(items);
    expect(lc).toBeLessThan(0.72);
    expect(lc).toBeGreaterThanOrEqual(0.5);
    // and symmetrically for a losing policy whose losses are the long responses
    const losing = [...repeat(8, { outcome: 0, lengthDelta: 100 }), ...repeat(2, { outcome: 1, lengthDelta: -100 })];
    const lcLosing = lengthControlledWinRate(losing);
    expect(lcLosing).toBeGreaterThan(0.28);
    expect(lcLosing).toBeLessThanOrEqual(0.5);
    expect(lc + lcLosing).toBeCloseTo(1, 6);
  });

  it('matches the closed-form MLE with two length groups (penalty negligible at n = 200)', () => {
    // Δ = ±50, s = 50, x = ±tanh(1). Two groups and two parameters: the unpenalised fit reproduces each group's win
    // rate, σ(θ0 ± θ1·x) = 0.9 / 0.3, so θ0 = (logit 0.9 + logit 0.3) / 2 and σ(θ0) = 0.662614 (raw win rate 0.6).
    const items = [
      ...repeat(90, { outcome: 1, lengthDelta: 50 }),
      ...repeat(10, { outcome: 0, lengthDelta: 50 }),
      ...repeat(30, { outcome: 1, lengthDelta: -50 }),
      ...repeat(70, { outcome: 0, lengthDelta: -50 }),
    ];
    expect(lengthControlledWinRate(items)).toBeCloseTo(0.662614, 2);
    expect(Math.abs(lengthControlledWinRate(items) - 0.662614)).toBeLessThan(0.003);
  });

  it('counts a tie as half a win and half a loss', () => {
    const deltas = [-30, 5, 12, 40, -8, 60];
    const outcomes = [0, 1, 1, 1, 0, 1];
    const withTies = [
      ...deltas.map((d, i) => ({ outcome: outcomes[i], lengthDelta: d })),
      { outcome: 0.5, lengthDelta: 20 },
      { outcome: 0.5, lengthDelta: 20 },
    ];
    const asWinAndLoss = [...deltas.map((d, i) => ({ outcome: outcomes[i], lengthDelta: d })), { outcome: 1, lengthDelta: 20 }, { outcome: 0, lengthDelta: 20 }];
    expect(lengthControlledWinRate(withTies)).toBeCloseTo(lengthControlledWinRate(asWinAndLoss), 6);
  });

  it('gives finite values in [0, 1] on degenerate inputs', () => {
    expect(lengthControlledWinRate(repeat(5, { outcome: 1, lengthDelta: 10 }))).toBe(1);
    expect(lengthControlledWinRate(repeat(5, { outcome: 0, lengthDelta: -10 }))).toBe(0);
    expect(lengthControlledWinRate([{ outcome: 1, lengthDelta: 10 }, { outcome: 1, lengthDelta: -3 }])).toBe(1);
    expect(lengthControlledWinRate(repeat(4, { outcome: 0.5, lengthDelta: 3 }))).toBeCloseTo(0.5, 9);
    expect(lengthControlledWinRate([{ outcome: 0.5, lengthDelta: 12 }, { outcome: 0.5, lengthDelta: -40 }])).toBeCloseTo(0.5, 6);
    expect(lengthControlledWinRate([{ outcome: 1, lengthDelta: 123 }])).toBe(1);
    expect(lengthControlledWinRate([{ outcome: 0.5, lengthDelta: 123 }])).toBeCloseTo(0.5, 9);
    // complete separation by length with huge differences
    const separated = [
      { outcome: 1, lengthDelta: 1e9 },
      { outcome: 1, lengthDelta: 5e8 },
      { outcome: 0, lengthDelta: -1e9 },
    ];
    const lc = lengthControlledWinRate(separated);
    expect(Number.isFinite(lc)).toBe(true);
    expect(lc).toBeGreaterThanOrEqual(0);
    expect(lc).toBeLessThanOrEqual(1);
  });

  it('rejects empty and out-of-range input', () => {
    expect(() => lengthControlledWinRate([])).toThrow(/no comparisons/);
    expect(() => lengthControlledWinRate([{ outcome: 2, lengthDelta: 0 }])).toThrow(/not in \[0, 1\]/);
    expect(() => lengthControlledWinRate([{ outcome: 1, lengthDelta: NaN }])).toThrow(/not finite/);
  });
});

describe('meanWithCi', () => {
  it('is mean ± 1.96·s/√n with the sample standard deviation', () => {
    // mean 2.5, s = √(5/3) = 1.290994, half-width = 1.96 · 1.290994 / 2 = 1.265175
    const { mean, ci } = meanWithCi([1, 2, 3, 4]);
    expect(mean).toBeCloseTo(2.5, 12);
    expect(ci[0]).toBeCloseTo(1.234825, 6);
    expect(ci[1]).toBeCloseTo(3.765175, 6);
  });

  it('collapses to the mean for one value, and to a point for constant values', () => {
    expect(meanWithCi([0.25])).toEqual({ mean: 0.25, ci: [0.25, 0.25] });
    expect(meanWithCi([3, 3, 3])).toEqual({ mean: 3, ci: [3, 3] });
    expect(() => meanWithCi([])).toThrow(/no values/);
  });
});

describe('klEstimate', () => {
  it('is the mean of log π − log π_init', () => {
    // differences 1, 0, 2 → 1
    expect(klEstimate([-1, -2, -4], [-2, -2, -6])).toBeCloseTo(1, 12);
    // an unbiased single estimate may be negative: differences −0.5, −1.5 → −1
    expect(klEstimate([-3, -4], [-2.5, -2.5])).toBeCloseTo(-1, 12);
  });

  it('throws on a length mismatch or no samples', () => {
    expect(() => klEstimate([-1, -2], [-1])).toThrow(/2 policy log-probabilities but 1/);
    expect(() => klEstimate([], [])).toThrow(/no samples/);
  });
});

describe('leanings', () => {
  it('is P(chosen has the larger value | the values differ), omitting features that never differ', () => {
    const result = leanings([
      { chosen: { length: 10, positive: 1 }, rejected: { length: 5, positive: 1 } }, // length larger, positive equal
      { chosen: { length: 3, positive: 2 }, rejected: { length: 8, positive: 1 } }, // length smaller, positive larger
      { chosen: { length: 7, positive: 0 }, rejected: { length: 6, positive: 0 } }, // length larger, positive equal
      { chosen: { length: 4, negative: 1 }, rejected: { length: 4, negative: 1 } }, // nothing differs
    ]);
    expect(result).toEqual({ length: 2 / 3, positive: 1 });
    expect(result).not.toHaveProperty('negative');
  });

  it('is empty without pairs and ignores features missing on one side', () => {
    expect(leanings([])).toEqual({});
    expect(leanings([{ chosen: { a: 1 }, rejected: { b: 2 } }])).toEqual({});
    expect(leanings([{ chosen: { a: 1 }, rejected: { a: 2 } }])).toEqual({ a: 0 });
  });
});

describe('spread', () => {
  it('is the sample standard deviation', () => {
    // mean 5, squared deviations sum to 32, 32 / 7 → 2.138090
    expect(spread([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(2.13809, 5);
    expect(spread([1, 3])).toBeCloseTo(Math.SQRT2, 12);
  });

  it('is 0 for fewer than two values', () => {
    expect(spread([])).toBe(0);
    expect(spread([42])).toBe(0);
  });
});
