import { gainPerMass, prepare } from './problem';
import { InvalidProblemError, type DroProblem } from './types';

/** The search visits every subset of samples; beyond this it stops being instant. */
export const NO_SPLIT_MAX_SAMPLES = 16;

/**
 * NEGATIVE CONTROL, WRONG ON PURPOSE. The value of the program one gets by entering −log ξ into E&K program
 * (13) as a single "concave" piece (K = 1), which docs/algorithm.md §4 and docs/dro.md §2.1 warn against:
 *
 *   sup_q Σ_i w_i ℓ(ξ_i − q_i)  s.t.  Σ_i w_i |q_i| ≤ ε,  ξ_i − q_i ∈ [δ, 1−δ].
 *
 * −log is convex, so this breaks Assumption 4.1: it maximises a convex function (non-convex program) and,
 * since each sample keeps all its mass in one place, it cannot split a sample and strictly under-estimates
 * the worst case. It exists only so that a test can show that gap. Solved by exhaustive vertex search (the
 * maximum of a convex function over a polytope is at a vertex): a subset moved whole to δ plus at most one
 * more sample moved part of the way with what is left of the budget.
 * @throws InvalidProblemError also when N > NO_SPLIT_MAX_SAMPLES.
 */
export function solveNoSplitting(p: DroProblem): number {
  const prep = prepare(p);
  const { n, delta, xi, w, epsilon } = prep;
  if (n > NO_SPLIT_MAX_SAMPLES) {
    throw new InvalidProblemError('log_xi', `the no-splitting control accepts at most ${NO_SPLIT_MAX_SAMPLES} samples`);
  }
  const cost = new Float64Array(n);
  const gain = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = xi[i] as number;
    cost[i] = (w[i] as number) * (x - delta);
    gain[i] = (w[i] as number) * gainPerMass(x, delta);
  }
  const subsets = 1 << n;
  const subsetCost = new Float64Array(subsets);
  const subsetGain = new Float64Array(subsets);
  let best = 0;
  for (let s = 1; s < subsets; s++) {
    const low = 31 - Math.clz32(s & -s);
    subsetCost[s] = (subsetCost[s & (s - 1)] as number) + (cost[low] as number);
    subsetGain[s] = (subsetGain[s & (s - 1)] as number) + (gain[low] as number);
  }
  for (let s = 0; s < subsets; s++) {
    const spent = subsetCost[s] as number;
    if (spent > epsilon) continue;
    const left = epsilon - spent;
    let bestPartial = 0;
    for (let j = 0; j < n; j++) {
      const wj = w[j] as number;
      if ((s >> j) & 1 || wj === 0) continue;
      const x = xi[j] as number;
      const y = Math.max(delta, x - left / wj);
      bestPartial = Math.max(bestPartial, wj * Math.log(x / y));
    }
    best = Math.max(best, (subsetGain[s] as number) + bestPartial);
  }
  return prep.erm + best;
}
