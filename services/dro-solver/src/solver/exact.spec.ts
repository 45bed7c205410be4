import { findCutLevel } from './exact';
import { solveDual, solveExact, solveLp, solveNoSplitting, type DroProblem, type DroSolution } from './index';
import { prepare } from './problem';
import { empirical, expectCertified, expectFeasible, relativeTo } from '../../testing/solution-checks';
import { mulberry32, randomInstance, seededLogXi } from '../../testing/seeded-instances';

const ell = (x: number): number => -Math.log(x);
/** r(ξ) = (ℓ(δ) − ℓ(ξ))/(ξ − δ), straight from the definition. */
const r = (x: number, delta: number): number => (ell(delta) - ell(x)) / (x - delta);

function eps(logXi: ArrayLike<number>, delta: number, value: number, weights?: number[]): DroProblem {
  return { logXi, delta, weights, budget: { kind: 'epsilon', value } };
}

function valueAt(p: DroProblem, epsilon: number): number {
  return solveExact({ ...p, budget: { kind: 'epsilon', value: epsilon } }).value;
}

describe('solveExact: closed forms and edge cases', () => {
  it('moves part of a single sample to δ (N = 1)', () => {
    const x = 0.6;
    const delta = 0.05;
    const s = solveExact(eps([Math.log(x)], delta, 0.2));
    const m = 0.2 / (x - delta);
    expect(s.movedFraction[0]).toBeCloseTo(m, 14);
    expect(s.value).toBeCloseTo((1 - m) * ell(x) + m * ell(delta), 13);
    expect(s.lambdaStar).toBeCloseTo(r(x, delta), 12);
    expect(s.lambdaStarLeft).toBe(s.lambdaStar);
    expect(s.splitIndex).toBe(0);
    expect(s.nMoved).toBe(1);
    expect(s.atoms).toEqual([
      { location: expect.closeTo(x, 15), mass: expect.closeTo(1 - m, 14), sourceIndex: 0, moved: false },
      { location: delta, mass: expect.closeTo(m, 14), sourceIndex: 0, moved: true },
    ]);
    expect(s.gradXi[0]).toBeCloseTo((1 - m) * (-1 / x) - m * s.lambdaStar, 12);
    // The atoms are built on first access; copies of the solution see them like any other field.
    expect(s.atoms).toBe(s.atoms);
    expect({ ...s }.atoms).toEqual(s.atoms);
    expect(JSON.parse(JSON.stringify(s)).atoms).toHaveLength(2);
  });

  it('reproduces the shadow prices of docs/dro.md §2.2(c) (δ = 0.01)', () => {
    const expected: Array<[number, number]> = [[0.02, 69.3], [0.1, 25.6], [0.5, 7.98], [0.9, 5.06]];
    for (const [x, price] of expected) {
      // At ε = 0 the right derivative is r of the smallest ξ.
      const s = solveExact(eps([Math.log(x)], 0.01, 0));
      expect(Math.abs(s.lambdaStar - price) / price).toBeLessThan(0.005);
    }
    // r → 1/δ as ξ → δ, without the cancellation of log ξ − log δ.
    const near = solveExact(eps([Math.log(0.01 * (1 + 1e-12))], 0.01, 0));
    expect(Math.abs(near.lambdaStar * 0.01 - 1)).toBeLessThan(1e-9);
  });

  it('gives the plain loss at ε = 0: no mass moves and the gradient is the ERM one', () => {
    const p = eps([-0.3, -2.5, Math.log(0.001), -0.01, -1.2], 0.01, 0, [1, 2, 1, 1, 3]);
    const s = solveExact(p);
    const { xi, w } = empirical(p);
    const erm = xi.reduce((a, x, i) => a + (w[i] as number) * ell(x), 0);
    expect(s.value).toBe(s.ermValue);
    expect(Math.abs(s.value - erm)).toBeLessThanOrEqual(1e-15 * erm);
    expect(Array.from(s.movedFraction)).toEqual([0, 0, 0, 0, 0]);
    xi.forEach((x, i) => expect(s.gradXi[i]).toBeCloseTo(-(w[i] as number) / x, 14));
    // Right derivative: r of the smallest ξ above δ (sample 1; sample 2 sits at δ after clipping).
    expect(s.lambdaStar).toBeCloseTo(r(Math.exp(-2.5), 0.01), 12);
    expect(s.lambdaStarLeft).toBe(s.lambdaStar);
    expect(s.nMoved).toBe(0);
    expect(s.splitIndex).toBe(-1);
    expect(s.atoms).toHaveLength(5);
    expect(s.warnings).toEqual([]);
  });

  it('saturates at ε ≥ ε_sat: F = −log δ, everything at δ, λ* = 0, and it says so', () => {
    const logXi = [-0.3, -2.5, -0.01, -1.2];
    const delta = 0.02;
    const epsSat = solveExact(eps(logXi, delta, 0)).epsilonSat;
    const { xi } = empirical(eps(logXi, delta, 0));
    expect(epsSat).toBeCloseTo(xi.reduce((a, x) => a + x, 0) / 4 - delta, 15);
    for (const e of [epsSat, epsSat * 1.5, 10]) {
      const s = solveExact(eps(logXi, delta, e));
      expect(s.saturated).toBe(true);
      expect(s.value).toBe(-Math.log(delta));
      expect(s.lambdaStar).toBe(0);
      expect(Array.from(s.movedFraction)).toEqual([1, 1, 1, 1]);
      for (const g of s.gradXi) expect(Math.abs(g)).toBe(0);
      expect(s.atoms.every((a) => a.moved && a.location === delta)).toBe(true);
      expect(s.warnings.join(' ')).toMatch(/saturat/);
      expect(s.warnings.join(' ')).toMatch(/gradient vanishes/);
      // Exactly at ε_sat the left derivative is still r of the last sample to move.
      expect(s.lambdaStarLeft).toBeCloseTo(e === epsSat ? r(1 - delta, delta) : 0, 12); // ξ = e^-0.01 clips to 1 − δ
    }
    const below = solveExact(eps(logXi, delta, epsSat * (1 - 1e-9)));
    expect(below.saturated).toBe(false);
    expect(below.warnings).toEqual([]);
  });

  it('clips ξ onto [δ, 1−δ], counts it, and treats samples at δ as free to move', () => {
    const delta = 0.01;
    // ξ = e^-10 < δ, ξ = 0.9999 > 1 − δ, and two ordinary samples.
    const logXi = [-10, Math.log(0.9999), -1, -0.5];
    const s = solveExact(eps(logXi, delta, 0.05));
    expect(s.nClipped).toBe(2);
    expect(s.ermValue).toBeCloseTo((ell(delta) + ell(1 - delta) + 1 + 0.5) / 4, 14);
    expect(s.movedFraction[0]).toBe(1); // at δ: zero cost, zero gain, counted as moved
    expect(s.nMoved).toBe(2);
    expect(s.gradXi[0]).toBeCloseTo(-0.25 * s.lambdaStar, 14);
    // The clipped instance is the same problem as one stated on the clipped values.
    const restated = solveExact(eps([Math.log(delta), Math.log(1 - delta), -1, -0.5], delta, 0.05));
    expect(Math.abs(restated.value - s.value)).toBeLessThan(1e-14);
    expectFeasible(eps(logXi, delta, 0.05), s, { maxSplits: 1 });
    expect(solveExact(eps(logXi, delta, 0)).movedFraction[0]).toBe(0);
  });

  it('handles ties: unique value, index order inside a level, one split, permutation-proof aggregates', () => {
    const delta = 0.01;
    const level = Math.log(0.4);
    const logXi = [-1.5, level, level, -0.2, level, level];
    const p = eps(logXi, delta, 0.18);
    const s = solveExact(p);
    // Sample 0 (ξ = e^-1.5 ≈ 0.22) moves first, then the 0.4-level in index order 1, 2, 4, 5.
    const cost0 = (Math.exp(-1.5) - delta) / 6;
    const costLevel = (0.4 - delta) / 6;
    const moved = (0.18 - cost0) / costLevel; // 2.something tied samples' worth
    expect(Math.floor(moved)).toBe(2);
    expect(Array.from(s.movedFraction)).toEqual([1, 1, 1, 0, expect.closeTo(moved - 2, 12), 0]);
    expect(s.splitIndex).toBe(4);
    expectFeasible(p, s, { maxSplits: 1 });

    const rand = mulberry32(11);
    for (let trial = 0; trial < 5; trial++) {
      const order = logXi.map((_, i) => i).sort(() => rand() - 0.5);
      const q = solveExact(eps(order.map((i) => logXi[i] as number), delta, 0.18));
      expect(Math.abs(q.value - s.value)).toBeLessThanOrEqual(1e-15 * s.value);
      const levelMass = order.reduce((a, i, j) => a + (logXi[i] === level ? (q.movedFraction[j] as number) : 0), 0);
      expect(levelMass).toBeCloseTo(moved, 12);
    }
  });

  it('reports both derivatives when the budget ends exactly at a breakpoint, for all three solvers', async () => {
    // Dyadic ξ, δ and weights: every cost and partial sum is exact, so ε really lands on the breakpoint.
    const delta = 1 / 64;
    const xs = [0.375, 0.75, 0.25, 0.5];
    for (const x of xs) expect(Math.exp(Math.log(x))).toBe(x);
    const logXi = xs.map(Math.log);
    const epsilon = 0.25 * (0.25 - delta) + 0.25 * (0.375 - delta);
    const p = eps(logXi, delta, epsilon);
    const h = 1e-6;
    const rightSlope = (valueAt(p, epsilon + h) - valueAt(p, epsilon)) / h;
    const leftSlope = (valueAt(p, epsilon) - valueAt(p, epsilon - h)) / h;
    for (const s of [solveExact(p), solveDual(p), await solveLp(p)]) {
      expect(s.splitIndex).toBe(-1);
      expect(Array.from(s.movedFraction)).toEqual([1, 0, 1, 0]);
      expect(s.lambdaStar).toBeCloseTo(r(0.5, delta), 10);
      expect(s.lambdaStarLeft).toBeCloseTo(r(0.375, delta), 10);
      expect(s.lambdaStar).toBeLessThan(s.lambdaStarLeft);
      expect(Math.abs(rightSlope - s.lambdaStar)).toBeLessThan(1e-6 * s.lambdaStar);
      expect(Math.abs(leftSlope - s.lambdaStarLeft)).toBeLessThan(1e-6 * s.lambdaStarLeft);
      expectCertified(p, s);
    }
    // Inside a level of ties the slope is continuous: both derivatives are that level's r.
    const tied = solveExact(eps([Math.log(0.25), Math.log(0.25), Math.log(0.5)], delta, (0.25 - delta) / 3));
    expect(Array.from(tied.movedFraction)).toEqual([1, 0, 0]);
    expect(tied.lambdaStar).toBeCloseTo(r(0.25, delta), 12);
    expect(tied.lambdaStarLeft).toBe(tied.lambdaStar);
  });

  it('is concave and non-decreasing in ε, with slope λ*', () => {
    const p = eps(seededLogXi(20, 3), 0.01, 0);
    const epsSat = solveExact(p).epsilonSat;
    const steps = 200;
    const grid = Array.from({ length: steps + 1 }, (_, j) => (j / steps) * epsSat);
    const values = grid.map((e) => valueAt(p, e));
    for (let j = 1; j < steps; j++) {
      expect((values[j + 1] as number) - 2 * (values[j] as number) + (values[j - 1] as number)).toBeLessThanOrEqual(1e-9);
      expect(values[j] as number).toBeGreaterThanOrEqual(values[j - 1] as number);
    }
    let checked = 0;
    for (const e of grid) {
      const s = solveExact({ ...p, budget: { kind: 'epsilon', value: e } });
      const m = s.splitIndex >= 0 ? (s.movedFraction[s.splitIndex] as number) : 0;
      if (!(m > 0.05 && m < 0.95)) continue; // away from breakpoints
      const h = 1e-7;
      const slope = (valueAt(p, e + h) - valueAt(p, e - h)) / (2 * h);
      expect(Math.abs(slope - s.lambdaStar)).toBeLessThanOrEqual(1e-6 * s.lambdaStar);
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('has the envelope gradient gradXi = ∂F/∂ξ_i (central differences), unlike the tempting alternatives', () => {
    const delta = 0.01;
    const xs = [0.62, 0.31, 0.88, 0.12, 0.45, 0.71, 0.27, 0.93];
    const w = 1 / xs.length;
    const sorted = [...xs].sort((a, b) => a - b);
    // Budget ends halfway through the 4th smallest sample: the split is well away from any breakpoint.
    const epsilon = w * (sorted.slice(0, 3).reduce((a, x) => a + x - delta, 0) + 0.5 * ((sorted[3] as number) - delta));
    const at = (ys: number[]): DroSolution => solveExact(eps(ys.map(Math.log), delta, epsilon));
    const s = at(xs);
    expect(s.splitIndex).toBe(xs.indexOf(sorted[3] as number));
    const h = 1e-7;
    xs.forEach((x, i) => {
      const plus = at(xs.map((y, j) => (j === i ? x + h : y))).value;
      const minus = at(xs.map((y, j) => (j === i ? x - h : y))).value;
      const fd = (plus - minus) / (2 * h);
      const g = s.gradXi[i] as number;
      expect(Math.abs(fd - g)).toBeLessThanOrEqual(1e-5 * Math.abs(g));
      const m = s.movedFraction[i] as number;
      if (m > 0) {
        // "Atoms ride along with ξ_i" weighs the moved mass with ℓ'(δ) = −1/δ; "atoms frozen" drops it.
        const ridingAlong = w * ((1 - m) * (-1 / x) - m / delta);
        const frozen = w * (1 - m) * (-1 / x);
        expect(Math.abs(ridingAlong - fd)).toBeGreaterThan(0.5 * Math.abs(fd));
        expect(Math.abs(frozen - fd)).toBeGreaterThan(0.3 * Math.abs(fd));
      }
    });
  });

  it('the "no splitting" K = 1 program is strictly below the exact worst case (negative control)', () => {
    // 12 samples like docs/dro.md §2.1's (ERM 0.375, ε_sat 0.725); it reports gaps of 0.07-0.15 nats on its set.
    const p = eps(seededLogXi(12, 1), 0.01, 0);
    const base = solveExact(p);
    expect(solveNoSplitting(p)).toBeCloseTo(base.ermValue, 14);
    for (const e of [0.01, 0.05, 0.1, 0.2]) {
      expect(e).toBeLessThan(base.epsilonSat);
      const exact = valueAt(p, e);
      const noSplit = solveNoSplitting({ ...p, budget: { kind: 'epsilon', value: e } });
      expect(noSplit).toBeLessThan(exact - 0.05);
      expect(noSplit).toBeGreaterThan(base.ermValue);
    }
    // At a breakpoint no split is needed, so the control is exact there: it is wrong, not just low.
    const delta = 1 / 64;
    const q = eps([0.375, 0.75, 0.25, 0.5].map(Math.log), delta, 0.25 * (0.25 - delta) + 0.25 * (0.375 - delta));
    expect(solveNoSplitting(q)).toBeCloseTo(solveExact(q).value, 14);
  });
});

describe('solveExact: parameterisation and invariances', () => {
  it('resolves ρ to ε = ρ·ε_sat', () => {
    const logXi = seededLogXi(50, 8);
    const byRho = solveExact({ logXi, delta: 0.01, budget: { kind: 'rho', value: 0.3 } });
    expect(byRho.epsilon).toBe(0.3 * byRho.epsilonSat);
    const byEps = solveExact(eps(logXi, 0.01, 0.3 * byRho.epsilonSat));
    expect(byEps.value).toBe(byRho.value);
    expect(byRho.saturated).toBe(false);
    expect(solveExact({ logXi, delta: 0.01, budget: { kind: 'rho', value: 0 } }).value).toBe(byRho.ermValue);
  });

  it('normalises weights: scaling them changes nothing, and integer weights equal repeated samples', () => {
    const logXi = [-0.2, -1.7, -0.9];
    const a = solveExact(eps(logXi, 0.01, 0.1, [1, 3, 2]));
    const scaled = solveExact(eps(logXi, 0.01, 0.1, [1e-3, 3e-3, 2e-3]));
    const repeated = solveExact(eps([-0.2, -1.7, -1.7, -1.7, -0.9, -0.9], 0.01, 0.1));
    expect(Math.abs(scaled.value - a.value)).toBeLessThan(1e-14);
    expect(Math.abs(repeated.value - a.value)).toBeLessThan(1e-14);
    const uniform = solveExact(eps(logXi, 0.01, 0.1, [5, 5, 5]));
    expect(Math.abs(uniform.value - solveExact(eps(logXi, 0.01, 0.1)).value)).toBeLessThan(1e-15);
    // A zero-weight sample carries no mass: it changes nothing and moves nothing.
    const withZero = solveExact(eps([...logXi, -3], 0.01, 0.1, [1, 3, 2, 0]));
    expect(Math.abs(withZero.value - a.value)).toBeLessThan(1e-14);
    expect(withZero.movedFraction[3]).toBe(0);
    expect(withZero.gradXi[3]).toBe(0);
    expect(withZero.atoms.some((atom) => atom.sourceIndex === 3)).toBe(false);
  });

  it('is invariant to permuting the samples', () => {
    const rand = mulberry32(21);
    const logXi = Array.from(seededLogXi(40, 9));
    const weights = logXi.map(() => rand());
    const s = solveExact(eps(logXi, 0.01, 0.07, weights));
    const order = logXi.map((_, i) => i).sort(() => rand() - 0.5);
    const t = solveExact(eps(order.map((i) => logXi[i] as number), 0.01, 0.07, order.map((i) => weights[i] as number)));
    expect(Math.abs(t.value - s.value)).toBeLessThanOrEqual(1e-14 * s.value);
    expect(t.lambdaStar).toBe(s.lambdaStar);
    order.forEach((i, j) => {
      expect(t.movedFraction[j]).toBeCloseTo(s.movedFraction[i] as number, 12);
      expect(t.gradXi[j]).toBeCloseTo(s.gradXi[i] as number, 12);
    });
  });

  it('stays within ERM ≤ F ≤ min(−log δ, ERM + ε/δ), feasible and certified, on random instances', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const p = randomInstance(seed, { maxN: 40 });
      const s = solveExact(p);
      expect(s.value).toBeGreaterThanOrEqual(s.ermValue);
      expect(s.value).toBeLessThanOrEqual(Math.min(-Math.log(p.delta), s.ermValue + s.epsilon / p.delta) * (1 + 1e-15));
      expectFeasible(p, s, { maxSplits: 1 });
      expectCertified(p, s);
      expect(s.atoms.length).toBeLessThanOrEqual(p.logXi.length + 1);
      s.gradXi.forEach((g, i) => {
        const w = empirical(p).w[i] as number;
        const m = s.movedFraction[i] as number;
        expect(s.surrogateA[i]).toBeCloseTo(w * (1 - m), 15);
        expect(s.surrogateB[i]).toBeCloseTo(w * m * s.lambdaStar, 12);
        expect(g).toBeCloseTo(-(s.surrogateA[i] as number) / (empirical(p).xi[i] as number) - (s.surrogateB[i] as number), 12);
      });
    }
  });
});

describe('solveExact: scale', () => {
  it('finds the level where the cumulative cost crosses ε, by buckets + quickselect and by its sorting fallback', () => {
    const rand = mulberry32(5);
    const problems: DroProblem[] = [];
    for (let seed = 1; seed <= 30; seed++) problems.push(randomInstance(seed, { maxN: 400 }));
    // All ξ inside one bucket, and many samples spread over many buckets.
    problems.push({ logXi: Array.from({ length: 3000 }, () => Math.log(0.5 + 1e-9 * rand())), delta: 0.01, budget: { kind: 'rho', value: 0.6 } });
    problems.push({ logXi: Array.from({ length: 50_000 }, () => Math.log(rand())), delta: 0.01, budget: { kind: 'rho', value: 0.3 } });
    let checked = 0;
    for (const p of problems) {
      const prep = prepare(p);
      if (prep.saturated) continue;
      const { xi, w } = prep;
      const order = Array.from(xi.keys()).filter((i) => (w[i] as number) > 0 && (xi[i] as number) > p.delta);
      order.sort((a, b) => (xi[a] as number) - (xi[b] as number));
      let cum = 0;
      let j = 0;
      let reference = { level: NaN, cumBelow: NaN };
      while (j < order.length) {
        const level = xi[order[j] as number] as number;
        let levelCost = 0;
        for (; j < order.length && xi[order[j] as number] === level; j++) {
          const i = order[j] as number;
          levelCost += (w[i] as number) * ((xi[i] as number) - p.delta);
        }
        if (cum + levelCost > prep.epsilon) {
          reference = { level, cumBelow: cum };
          break;
        }
        cum += levelCost;
      }
      for (const cut of [findCutLevel(prep), findCutLevel(prep, 0)]) {
        expect(cut.level).toBe(reference.level);
        expect(Math.abs(cut.cumBelow - reference.cumBelow)).toBeLessThanOrEqual(1e-14 * Math.max(1e-300, prep.epsilon));
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('agrees with the dual on 2·10^5 samples with heavy ties', () => {
    const rand = mulberry32(4);
    const n = 200_000;
    const logXi = new Float64Array(n);
    for (let i = 0; i < n; i++) logXi[i] = Math.log(0.01 + Math.floor(rand() * 500) / 510); // 500 levels
    const p: DroProblem = { logXi, delta: 0.02, budget: { kind: 'rho', value: 0.37 } };
    const s = solveExact(p);
    const d = solveDual(p);
    expect(Math.abs(s.value - d.value)).toBeLessThanOrEqual(1e-12 * relativeTo(s.value));
    expect(d.lambdaStar).toBe(s.lambdaStar);
    expect(d.splitIndex).toBe(s.splitIndex);
    expect(s.nClipped).toBeGreaterThan(0);
    expect(Math.abs(s.dualGap)).toBeLessThanOrEqual(1e-10 * s.value);
  });
});
