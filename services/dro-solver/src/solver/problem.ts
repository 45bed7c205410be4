import { InvalidProblemError, type DroProblem } from './types';

/**
 * Rejects a problem no solver can answer, naming the offending request field (docs/algorithm.md §4 input rules:
 * log ξ finite and ≤ 0, weights non-negative and not all zero, δ ∈ (0, 0.5), ε ≥ 0 or ρ ∈ [0, 1)).
 * @throws InvalidProblemError
 */
export function validateProblem(p: DroProblem): void {
  const logXi = p.logXi;
  if (logXi == null || logXi.length === 0) throw new InvalidProblemError('log_xi', 'must contain at least one sample');
  const n = logXi.length;
  for (let i = 0; i < n; i++) {
    const v = logXi[i] as number;
    if (v <= 0 && v !== -Infinity) continue;
    const why = Number.isNaN(v)
      ? 'is NaN'
      : !Number.isFinite(v)
        ? 'is not finite'
        : 'is > 0, but xi = exp(log_xi) is a probability and must be <= 1';
    throw new InvalidProblemError('log_xi', `log_xi[${i}] = ${v} ${why}`);
  }

  const weights = p.weights;
  if (weights != null && weights.length > 0) {
    if (weights.length !== n) {
      throw new InvalidProblemError('weights', `has ${weights.length} entries but log_xi has ${n}`);
    }
    let anyPositive = false;
    for (let i = 0; i < n; i++) {
      const v = weights[i] as number;
      if (!(v >= 0) || v === Infinity) {
        throw new InvalidProblemError('weights', `weights[${i}] = ${v} must be finite and >= 0`);
      }
      if (v > 0) anyPositive = true;
    }
    if (!anyPositive) throw new InvalidProblemError('weights', 'all weights are zero; they cannot be normalised');
  }

  const delta = p.delta;
  if (typeof delta !== 'number' || !(delta > 0 && delta < 0.5)) {
    throw new InvalidProblemError(
      'delta',
      `delta = ${String(delta)} must be in (0, 0.5); the support is [delta, 1 - delta] and delta = 0 makes the worst case infinite`,
    );
  }

  const budget = p.budget;
  if (budget == null) throw new InvalidProblemError('budget', 'one of epsilon or rho is required');
  if (budget.kind === 'epsilon') {
    const e = budget.value;
    if (typeof e !== 'number' || !(e >= 0) || e === Infinity) {
      throw new InvalidProblemError('epsilon', `epsilon = ${String(e)} must be finite and >= 0`);
    }
  } else if (budget.kind === 'rho') {
    const r = budget.value;
    if (typeof r !== 'number' || !(r >= 0 && r < 1)) {
      throw new InvalidProblemError('rho', `rho = ${String(r)} must be in [0, 1)`);
    }
  } else {
    throw new InvalidProblemError('budget', `unknown budget kind ${JSON.stringify((budget as { kind: unknown }).kind)}`);
  }
}

/** A validated problem in the solvers' working form: clipped ξ, normalised weights, the radius resolved. */
export interface Prepared {
  n: number;
  delta: number;
  /** ξ_i clipped onto [δ, 1−δ]. */
  xi: Float64Array;
  /** ℓ(ξ_i) = −log ξ_i, taken from log ξ directly when not clipped (no exp/log round trip). */
  loss: Float64Array;
  /** ℓ(δ) − ℓ(ξ_i), the gain per unit mass of moving sample i to δ. */
  gain: Float64Array;
  /** Normalised weights, Σ w_i = 1. */
  w: Float64Array;
  /** ℓ(δ) = −log δ. */
  lossDelta: number;
  erm: number;
  epsSat: number;
  epsilon: number;
  saturated: boolean;
  nClipped: number;
}

/** Validates `p` and brings it into working form. @throws InvalidProblemError */
export function prepare(p: DroProblem): Prepared {
  validateProblem(p);
  const n = p.logXi.length;
  const delta = p.delta;
  const hiClip = 1 - delta;
  const lossDelta = -Math.log(delta);
  const lossHi = -Math.log(hiClip);
  const xi = new Float64Array(n);
  const loss = new Float64Array(n);
  const gain = new Float64Array(n);
  const twoDelta = 2 * delta;
  let nClipped = 0;
  for (let i = 0; i < n; i++) {
    const lx = p.logXi[i] as number;
    const x = Math.exp(lx);
    if (x < delta) {
      xi[i] = delta;
      loss[i] = lossDelta;
      nClipped++;
    } else if (x > hiClip) {
      xi[i] = hiClip;
      loss[i] = lossHi;
      nClipped++;
    } else {
      xi[i] = x;
      loss[i] = -lx;
    }
    // From ξ ≥ 2δ on the gain is ≥ log 2, so the plain difference of the losses loses at most a few ulps and
    // saves a log1p per sample; below, log1p keeps the digits that the difference would cancel.
    const xc = xi[i] as number;
    gain[i] = xc >= twoDelta ? lossDelta - (loss[i] as number) : gainPerMass(xc, delta);
  }

  const w = normalisedWeights(p.weights, n);
  let erm = 0;
  let epsSat = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    erm += wi * (loss[i] as number);
    epsSat += wi * ((xi[i] as number) - delta);
  }
  const epsilon = p.budget.kind === 'epsilon' ? p.budget.value : p.budget.value * epsSat;
  return { n, delta, xi, loss, gain, w, lossDelta, erm, epsSat, epsilon, saturated: epsilon >= epsSat, nClipped };
}

function normalisedWeights(weights: ArrayLike<number> | undefined, n: number): Float64Array {
  const w = new Float64Array(n);
  if (weights == null || weights.length === 0) return w.fill(1 / n);
  // Dividing by the maximum first keeps the sum finite for weights near the float64 limit.
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, weights[i] as number);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = (weights[i] as number) / max;
    w[i] = v;
    sum += v;
  }
  for (let i = 0; i < n; i++) w[i] = (w[i] as number) / sum;
  return w;
}

/**
 * ℓ(δ) − ℓ(ξ) = log(ξ/δ), written as log1p((ξ − δ)/δ) so that ξ close to δ loses no digits to cancellation.
 */
export function gainPerMass(xi: number, delta: number): number {
  return Math.log1p((xi - delta) / delta);
}

/**
 * r(ξ) = (ℓ(δ) − ℓ(ξ))/(ξ − δ), the gain per unit of budget of moving mass from ξ to δ; non-increasing in ξ
 * (docs/dro.md Lemma 2), with the limit 1/δ at ξ = δ.
 */
export function ratio(xi: number, delta: number): number {
  const d = xi - delta;
  return d > 0 ? Math.log1p(d / delta) / d : 1 / delta;
}
