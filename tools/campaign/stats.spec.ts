import { betweenSeeds, lossKept, pairedDifference, tQuantile975 } from './stats';

describe('campaign statistics over seeds', () => {
  it("takes Student's t quantile, not the normal one, for few seeds", () => {
    expect(tQuantile975(1)).toBeCloseTo(12.706, 3);
    expect(tQuantile975(2)).toBeCloseTo(4.303, 3);
    expect(tQuantile975(30)).toBeCloseTo(2.042, 3);
    // Beyond the table: t_{0.975, 40} = 2.021, t_{0.975, 120} = 1.980.
    expect(tQuantile975(40)).toBeCloseTo(2.021, 2);
    expect(tQuantile975(120)).toBeCloseTo(1.98, 2);
    expect(() => tQuantile975(0)).toThrow(RangeError);
  });

  it('gives the 95% between-seed t-interval: mean ± t_{0.975, n−1}·s/√n', () => {
    // values 0.5, 0.6, 0.7: mean 0.6, s = 0.1, half-width 4.303·0.1/√3 = 0.24844.
    const e = betweenSeeds([0.5, 0.6, 0.7]);
    expect(e.mean).toBeCloseTo(0.6, 12);
    expect(e.n).toBe(3);
    expect(e.ci![0]).toBeCloseTo(0.6 - 0.248434, 5);
    expect(e.ci![1]).toBeCloseTo(0.6 + 0.248434, 5);
  });

  it('has no interval with one seed, and refuses none', () => {
    expect(betweenSeeds([0.42])).toEqual({ mean: 0.42, ci: null, n: 1 });
    expect(() => betweenSeeds([])).toThrow(RangeError);
  });

  it('pairs the difference by seed, over the seeds both sides have', () => {
    const a = new Map([[1, 0.6], [2, 0.7], [3, 0.65], [4, 0.9]]);
    const b = new Map([[1, 0.5], [2, 0.55], [3, 0.6]]);
    // per-seed differences 0.1, 0.15, 0.05: mean 0.1, s 0.05, half 4.303·0.05/√3 = 0.124217.
    const d = pairedDifference(a, b)!;
    expect(d.n).toBe(3);
    expect(d.mean).toBeCloseTo(0.1, 12);
    expect(d.ci![0]).toBeCloseTo(0.1 - 0.124217, 5);
    // A constant shift has zero spread: the interval is the point, which excludes zero.
    const shifted = pairedDifference(new Map([[1, 0.61], [2, 0.71]]), new Map([[1, 0.5], [2, 0.6]]))!;
    expect(shifted.ci![0]).toBeCloseTo(0.11, 12);
    expect(shifted.ci![1]).toBeCloseTo(0.11, 12);
    expect(pairedDifference(new Map([[1, 0.5]]), new Map([[2, 0.5]]))).toBeUndefined();
  });

  it("measures the fraction of dpo-seed's loss under noise a configuration keeps", () => {
    const dpo = { clean: 0.6, noisy: 0.5 }; // dpo-seed loses 0.1
    expect(lossKept({ clean: 0.7, noisy: 0.7 }, dpo)).toBeCloseTo(1, 12); // lost nothing
    expect(lossKept({ clean: 0.7, noisy: 0.65 }, dpo)).toBeCloseTo(0.5, 12); // lost half: the goal's bar
    expect(lossKept({ clean: 0.7, noisy: 0.6 }, dpo)).toBeCloseTo(0, 12); // lost as much
    expect(lossKept({ clean: 0.7, noisy: 0.55 }, dpo)).toBeCloseTo(-0.5, 12); // lost more
    expect(lossKept({ clean: 0.6, noisy: 0.62 }, dpo)).toBeCloseTo(1.2, 12); // gained
    expect(lossKept({ clean: 0.7, noisy: 0.6 }, { clean: 0.5, noisy: 0.52 })).toBeUndefined(); // dpo-seed lost nothing
    expect(lossKept({ clean: 0.7, noisy: 0.6 }, { clean: 0.5, noisy: 0.5 })).toBeUndefined();
  });
});
