import { assemble, zeroCostFraction } from './assemble';
import { saturatedPlan } from './exact';
import { prepare, gainPerMass, ratio, type Prepared } from './problem';
import type { DroProblem, DroSolution } from './types';

/**
 * The dual of docs/algorithm.md §4 ("Certificate"; docs/dro.md §2.2(b), from E&K (12b)), minimised directly:
 *
 *   F(ε) = min_{λ ≥ 0} G(λ),  G(λ) = λε + Σ_i w_i max(ℓ(ξ_i), ℓ(δ) − λ(ξ_i − δ)),
 *
 * a convex piecewise-linear function of λ with breakpoints {0} ∪ {r_i}. Its right slope at λ is
 * ε − Σ_{r_i > λ} w_i (ξ_i − δ), so walking the breakpoints from the largest r down finds the set of
 * minimisers [λ_R, λ_L]; λ_R is the right derivative dF/dε (λ*) and λ_L the left one. The value is G(λ*)
 * itself, and the plan comes from complementary slackness: samples with r_i > λ* move whole, r_i < λ* stay,
 * and those with r_i = λ* share what is left of ε in index order (so at most one is split).
 *
 * It shares no code with `solveExact` in finding λ*, the value or the plan (beyond input preparation and the
 * trivial saturated plan), which is what makes it a check. O(N log N) with a comparator sort: fine for
 * verification, not tuned like the exact solver.
 * @throws InvalidProblemError
 */
export function solveDual(p: DroProblem): DroSolution {
  const prep = prepare(p);
  const { n, delta, xi, w, epsilon } = prep;

  const active: number[] = [];
  for (let i = 0; i < n; i++) if ((w[i] as number) > 0 && (xi[i] as number) > delta) active.push(i);
  const r = new Float64Array(n);
  for (const i of active) r[i] = ratio(xi[i] as number, delta);
  active.sort((a, b) => (r[b] as number) - (r[a] as number) || a - b);

  let lambdaR = 0;
  let lambdaL = 0;
  let groupStart = -1; // first position of the group of equal r at λ_R, if the minimum is at a breakpoint
  let before = 0; // Σ w_i (ξ_i − δ) over r_i > current group
  let prevR = NaN;
  for (let j = 0; j < active.length; ) {
    const rj = r[active[j] as number] as number;
    let groupCost = 0;
    let e = j;
    while (e < active.length && r[active[e] as number] === rj) {
      const i = active[e] as number;
      groupCost += (w[i] as number) * ((xi[i] as number) - delta);
      e++;
    }
    if (epsilon < before + groupCost) {
      lambdaR = rj;
      // The left slope is ≤ 0 up to the previous breakpoint when ε lands exactly on the end of that group.
      lambdaL = epsilon === before && before > 0 ? prevR : rj;
      groupStart = j;
      break;
    }
    before += groupCost;
    prevR = rj;
    j = e;
  }
  if (groupStart < 0) {
    // Right slope at λ = 0 is ε − ε_sat ≥ 0: λ* = 0, and exactly at ε_sat every λ ∈ [0, r_min] is optimal.
    lambdaR = 0;
    lambdaL = epsilon === before && active.length > 0 ? prevR : 0;
  }
  if (epsilon === 0) lambdaL = lambdaR;

  const value = dualObjective(prep, prep.saturated ? 0 : lambdaR);
  if (prep.saturated) {
    const plan = saturatedPlan(prep);
    return assemble(prep, { ...plan, lambdaStarLeft: lambdaL, value });
  }

  const m = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    if (wi === 0 || (xi[i] as number) === delta) m[i] = zeroCostFraction(wi, epsilon);
    else if ((r[i] as number) > lambdaR) m[i] = 1;
  }
  let splitIndex = -1;
  if (groupStart >= 0) {
    let left = epsilon - before;
    for (let j = groupStart; j < active.length && left > 0; j++) {
      const i = active[j] as number;
      if (r[i] !== lambdaR) break;
      const c = (w[i] as number) * ((xi[i] as number) - delta);
      if (c <= left) {
        m[i] = 1;
        left -= c;
      } else {
        m[i] = left / c;
        splitIndex = i;
        left = 0;
      }
    }
  }
  return assemble(prep, { m, lambdaStar: lambdaR, lambdaStarLeft: lambdaL, value, splitIndex });
}

/** G(λ), measured from the ERM so that the small excess terms keep their digits. */
function dualObjective(prep: Prepared, lambda: number): number {
  const { n, delta, xi, w, epsilon } = prep;
  let excess = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    if (wi === 0 || x === delta) continue;
    const e = gainPerMass(x, delta) - lambda * (x - delta);
    if (e > 0) excess += wi * e;
  }
  return prep.erm + lambda * epsilon + excess;
}
