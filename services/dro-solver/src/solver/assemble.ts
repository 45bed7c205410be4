import type { Prepared } from './problem';
import type { Atom, DroSolution } from './types';

/** What a solver decides; everything else in a `DroSolution` follows from it. */
export interface Plan {
  /** m_i ∈ [0, 1], the fraction of sample i moved to δ. */
  m: Float64Array;
  lambdaStar: number;
  lambdaStarLeft: number;
  value: number;
  splitIndex: number;
  warnings?: string[];
}

export const SATURATION_WARNING =
  'saturated: epsilon >= epsilon_sat, so all mass sits at delta, the worst case is -log(delta) and the gradient ' +
  'vanishes (lambda_star = 0); use rho < 1 to keep a learning signal';

/**
 * Derives the gradient, the surrogate coefficients, the atoms of Q* and the certificate from a plan
 * (docs/algorithm.md §4, "Training gradient" and "Certificate").
 */
export function assemble(prep: Prepared, plan: Plan): DroSolution {
  const { n, delta, xi, w, gain, epsilon } = prep;
  const { m, lambdaStar } = plan;
  const gradXi = new Float64Array(n);
  const surrogateA = new Float64Array(n);
  const surrogateB = new Float64Array(n);
  let transportCost = 0;
  let primalGain = 0;
  let dualExcess = 0;
  let nMoved = 0;
  let nAtoms = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    const mi = m[i] as number;
    const stay = wi * (1 - mi);
    const moved = wi * mi;
    gradXi[i] = -(stay / x + moved * lambdaStar) + 0; // + 0: no −0 for samples without mass
    surrogateA[i] = stay;
    surrogateB[i] = moved * lambdaStar;
    if (mi > 0) nMoved++;
    if (stay > 0) nAtoms++;
    if (moved > 0) nAtoms++;
    if (wi === 0 || x === delta) continue;
    // Both objectives are measured relative to the ERM so that the gap is not lost to cancellation against it.
    const c = x - delta;
    const g = gain[i] as number;
    transportCost += moved * c;
    primalGain += moved * g;
    const excess = g - lambdaStar * c;
    if (excess > 0) dualExcess += wi * excess;
  }
  const warnings = [...(plan.warnings ?? [])];
  if (prep.saturated) warnings.push(SATURATION_WARNING);
  let atoms: Atom[] | undefined;
  return {
    value: plan.value,
    ermValue: prep.erm,
    lambdaStar,
    lambdaStarLeft: plan.lambdaStarLeft,
    epsilon,
    epsilonSat: prep.epsSat,
    saturated: prep.saturated,
    movedFraction: m,
    gradXi,
    surrogateA,
    surrogateB,
    // Q* has up to N + 1 atoms, and a million small objects cost more than the rest of the solve; the
    // training path reads only m_i and the surrogate coefficients, so the atoms are built on first access
    // (from ξ and w only, so that the rest of the working arrays can be collected).
    get atoms(): Atom[] {
      atoms ??= buildAtoms(xi, w, delta, m, nAtoms);
      return atoms;
    },
    set atoms(value: Atom[]) {
      atoms = value;
    },
    dualGap: lambdaStar * epsilon + dualExcess - primalGain,
    transportCost,
    nClipped: prep.nClipped,
    nMoved,
    splitIndex: plan.splitIndex,
    warnings,
  };
}

/** Q* = Σ_i (w_i − p_i) δ_{ξ_i} + p_i δ_{δ} (Eq. 2-5), in sample order, the unmoved part first. */
function buildAtoms(xi: Float64Array, w: Float64Array, delta: number, m: Float64Array, count: number): Atom[] {
  const atoms = new Array<Atom>(count);
  let j = 0;
  for (let i = 0; i < xi.length; i++) {
    const wi = w[i] as number;
    const mi = m[i] as number;
    const stay = wi * (1 - mi);
    const moved = wi * mi;
    if (stay > 0) atoms[j++] = { location: xi[i] as number, mass: stay, sourceIndex: i, moved: false };
    if (moved > 0) atoms[j++] = { location: delta, mass: moved, sourceIndex: i, moved: true };
  }
  return atoms;
}

/**
 * The fixed part of every plan: samples with zero weight carry no mass and move nothing; samples sitting at δ
 * move for free, so they count as moved (m = 1) whenever there is any budget (the right-derivative
 * convention: their gradient is −w_i λ*, as for the other fully moved samples).
 */
export function zeroCostFraction(wi: number, epsilon: number): number {
  return wi > 0 && epsilon > 0 ? 1 : 0;
}
