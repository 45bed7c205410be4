import { klEstimate, leanings, meanWithCi, spread } from './metrics';

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
