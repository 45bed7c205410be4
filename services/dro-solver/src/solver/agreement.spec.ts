import { solveDual, solveExact, solveLp, type DroProblem, type DroSolution } from './index';
import { buildLp } from './lp';
import { prepare } from './problem';
import { empirical, expectCertified, expectFeasible, relativeTo } from '../../testing/solution-checks';
import { randomInstance, seededLogXi } from '../../testing/seeded-instances';

/** Large enough to exercise the LP's size, small enough (≈ 1 s) for the unit tests. */
const LP_TEST_MAX_N = 80;

/** Moved mass Σ w_i m_i per distinct ξ: unique even when tied samples may share it differently. */
function movedPerLevel(p: DroProblem, s: DroSolution): Map<number, number> {
  const { xi, w } = empirical(p);
  const levels = new Map<number, number>();
  xi.forEach((x, i) => levels.set(x, (levels.get(x) ?? 0) + (w[i] as number) * (s.movedFraction[i] as number)));
  return levels;
}

const SEEDS = Array.from({ length: 40 }, (_, j) => 1000 + j);

describe('exact, dual and LP agree (docs/algorithm.md §4: three independent routes to the same worst case)', () => {
  const corners = { ties: 0, clipped: 0, zeroWeight: 0, epsilonZero: 0, saturated: 0, split: 0 };

  it.each(SEEDS)('on random instance %i', async (seed) => {
    const p = randomInstance(seed, { maxN: 30 });
    const exact = solveExact(p);
    const dual = solveDual(p);
    const lp = await solveLp(p);
    const tol = 1e-9 * relativeTo(exact.value);

    expect(Math.abs(dual.value - exact.value)).toBeLessThanOrEqual(tol);
    expect(Math.abs(lp.value - exact.value)).toBeLessThanOrEqual(tol);

    // The dual recovers the same plan and the same one-sided derivatives.
    expect(dual.saturated).toBe(exact.saturated);
    expect(dual.lambdaStar).toBeCloseTo(exact.lambdaStar, 10);
    expect(dual.lambdaStarLeft).toBeCloseTo(exact.lambdaStarLeft, 10);
    expect(dual.splitIndex).toBe(exact.splitIndex);
    exact.movedFraction.forEach((m, i) => expect(dual.movedFraction[i]).toBeCloseTo(m, 12));

    // The LP may share a level of tied samples differently, but not the mass moved from each level.
    expect(lp.saturated).toBe(exact.saturated);
    expect(Math.abs(lp.lambdaStar - exact.lambdaStar)).toBeLessThanOrEqual(1e-9 * Math.max(1, exact.lambdaStar));
    expect(Math.abs(lp.lambdaStarLeft - exact.lambdaStarLeft)).toBeLessThanOrEqual(1e-9 * Math.max(1, exact.lambdaStarLeft));
    const exactLevels = movedPerLevel(p, exact);
    for (const [level, mass] of movedPerLevel(p, lp)) expect(mass).toBeCloseTo(exactLevels.get(level) as number, 8);
    expect(lp.warnings.filter((w) => w.includes('HiGHS'))).toEqual([]);

    for (const s of [exact, dual]) {
      expectFeasible(p, s, { maxSplits: 1 });
      expectCertified(p, s);
    }
    expectFeasible(p, lp);
    expectCertified(p, lp);

    const { xi, w } = empirical(p);
    if (new Set(xi).size < xi.length) corners.ties++;
    if (exact.nClipped > 0) corners.clipped++;
    if (w.includes(0)) corners.zeroWeight++;
    if (exact.epsilon === 0) corners.epsilonZero++;
    if (exact.saturated) corners.saturated++;
    if (exact.splitIndex >= 0) corners.split++;
  });

  it('covered ties, clipping, zero weights, ε = 0, saturation and splits', () => {
    for (const [corner, count] of Object.entries(corners)) expect([corner, count >= 2]).toEqual([corner, true]);
  });
});

describe('the reference LP', () => {
  it('is program (13) with K = #distinct knots − 1 chord pieces: 3NK columns and 2NK + N + 1 rows', () => {
    const p: DroProblem = { logXi: [-0.2, -1, -1, -9], delta: 0.01, budget: { kind: 'epsilon', value: 0.1 } };
    const lp = buildLp(prepare(p));
    // Knots {δ, e^-1, e^-0.2, 1 − δ}: e^-9 clips onto δ and the tie collapses.
    expect(lp.pieces).toBe(3);
    const rows = lp.text.split('\n').filter((line) => /^ [a-z0-9_]+: /.test(line) && !line.startsWith(' obj:'));
    expect(rows).toHaveLength(2 * 4 * 3 + 4 + 1);
    const columns = new Set(lp.text.match(/\b[auv]\d+_\d+\b/g));
    expect(columns.size).toBe(3 * 4 * 3);
  });

  it('matches the exact value on a larger instance', async () => {
    const logXi = seededLogXi(LP_TEST_MAX_N, 12);
    const p: DroProblem = { logXi, delta: 0.005, budget: { kind: 'rho', value: 0.4 } };
    const lp = await solveLp(p);
    const exact = solveExact(p);
    expect(Math.abs(lp.value - exact.value)).toBeLessThanOrEqual(1e-9 * relativeTo(exact.value));
  });
});
