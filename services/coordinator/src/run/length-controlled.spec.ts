import { lengthControlledWinRate } from './length-controlled';

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
