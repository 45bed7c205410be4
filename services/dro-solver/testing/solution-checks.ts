/**
 * Test-only checks of a DroSolution against the problem, written from the definitions (docs/algorithm.md §4)
 * rather than from the solvers' code, so that they can catch the solvers' mistakes.
 */
import { w1FromCdfs } from './seeded-instances';
import type { DroProblem, DroSolution } from '../src/solver/types';

/** ξ clipped onto [δ, 1−δ] and the normalised weights, computed the plain way. */
export function empirical(p: DroProblem): { xi: number[]; w: number[] } {
  const xi = Array.from(p.logXi, (l) => Math.min(1 - p.delta, Math.max(p.delta, Math.exp(l))));
  const raw = p.weights && p.weights.length > 0 ? Array.from(p.weights) : xi.map(() => 1);
  const total = raw.reduce((a, b) => a + b, 0);
  return { xi, w: raw.map((v) => v / total) };
}

/** The dual objective λε + Σ_i w_i max(ℓ(ξ_i), ℓ(δ) − λ(ξ_i − δ)) straight from its definition. */
export function dualObjectiveAt(p: DroProblem, epsilon: number, lambda: number): number {
  const { xi, w } = empirical(p);
  let total = lambda * epsilon;
  xi.forEach((x, i) => {
    total += (w[i] as number) * Math.max(-Math.log(x), -Math.log(p.delta) - lambda * (x - p.delta));
  });
  return total;
}

export function relativeTo(value: number): number {
  return Math.max(1, Math.abs(value));
}

/**
 * Feasibility of the returned plan: 0 ≤ p_i ≤ w_i, spent budget ≤ ε, the atoms form a probability
 * distribution whose W1 distance to the empirical one (from the CDFs) is within ε, and the value is
 * E_Q*[ℓ] of those atoms.
 */
export function expectFeasible(p: DroProblem, s: DroSolution, opts: { maxSplits?: number } = {}): void {
  const { xi, w } = empirical(p);
  const n = xi.length;
  let cost = 0;
  let splits = 0;
  for (let i = 0; i < n; i++) {
    const m = s.movedFraction[i] as number;
    expect(m).toBeGreaterThanOrEqual(0);
    expect(m).toBeLessThanOrEqual(1);
    const moved = (w[i] as number) * m;
    cost += moved * ((xi[i] as number) - p.delta);
    if (m > 0 && m < 1 && (w[i] as number) > 0) splits++;
  }
  if (opts.maxSplits !== undefined) expect(splits).toBeLessThanOrEqual(opts.maxSplits);
  expect(s.transportCost).toBeLessThanOrEqual(s.epsilon * (1 + 1e-12) + 1e-300);
  expect(Math.abs(cost - s.transportCost)).toBeLessThanOrEqual(1e-12 * Math.max(1, s.epsilon));

  expect(s.atoms.length).toBeLessThanOrEqual(n + (opts.maxSplits ?? n));
  const totalMass = s.atoms.reduce((a, atom) => a + atom.mass, 0);
  expect(Math.abs(totalMass - 1)).toBeLessThanOrEqual(1e-12);
  const w1 = w1FromCdfs(
    xi.map((x, i) => [x, w[i] as number]),
    s.atoms.map((a) => [a.location, a.mass]),
  );
  expect(w1).toBeLessThanOrEqual(s.epsilon + 1e-12);
  const expected = s.atoms.reduce((a, atom) => a + atom.mass * -Math.log(atom.location), 0);
  expect(Math.abs(expected - s.value)).toBeLessThanOrEqual(1e-10 * relativeTo(s.value));
}

/** Weak and strong duality at the reported λ*, with the dual evaluated from its definition. */
export function expectCertified(p: DroProblem, s: DroSolution): void {
  expect(Math.abs(s.dualGap)).toBeLessThanOrEqual(1e-10 * relativeTo(s.value));
  const dual = dualObjectiveAt(p, s.epsilon, s.lambdaStar);
  expect(Math.abs(dual - s.value)).toBeLessThanOrEqual(1e-10 * relativeTo(s.value));
}
