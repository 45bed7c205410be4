/**
 * The length-controlled win rate of the evaluation stage (eval/lc_win_rate): how often π_t beats π_init on gold had
 * their responses been equally long. Pure functions, no I/O.
 */
import { mean } from './metrics';

/** One gold comparison of a policy response against π_init's response to the same prompt. */
export interface LengthComparison {
  /** 1 when the policy's response won, 0 when it lost, 0.5 for a tie (any value in [0, 1] is accepted). */
  outcome: number;
  /** Policy response length minus π_init response length, in characters. */
  lengthDelta: number;
}

/**
 * L2 penalty (λ/2)·θ1² on the length coefficient of {@link lengthControlledWinRate}. Small next to the likelihood
 * of any realistic evaluation set (the Fisher information of θ1 is about n·p(1−p)·E[tanh²] ≫ 0.1), it matters only
 * when the data do not pin θ1 down: when every win comes with a longer response and every loss with a shorter one
 * (complete separation, where the unpenalised MLE has θ1 → ∞), and when every length difference is the same (θ1
 * and θ0 are then confounded, and the penalty assigns the whole effect to θ0, so the LC win rate is the raw one).
 */
export const LC_L2_PENALTY = 0.1;

/**
 * Length-controlled win rate (Dubois et al. 2024, "Length-Controlled AlpacaEval"), reduced to the terms an evaluation
 * has (one policy against one baseline, no per-instruction difficulty term):
 *
 *   P(policy wins | Δ) = σ(θ0 + θ1 · tanh(Δ / s)),   s = population standard deviation of Δ (1 when it is 0),
 *
 * fitted by maximum likelihood with Newton's method (IRLS) and a line search. A tie counts as half a win and half a
 * loss (the Bernoulli log-likelihood with target 0.5); θ1 carries the L2 penalty {@link LC_L2_PENALTY}, θ0 none.
 * The LC win rate is σ(θ0): the predicted win rate had the two responses been equally long.
 *
 * Degenerate inputs give finite values in [0, 1]: all wins → 1, all losses → 0 (the limits of the MLE, which
 * diverges there), all ties → 0.5, a single comparison → its outcome, equal lengths → the raw win rate.
 * Throws on an empty list or a non-finite/out-of-range value.
 */
export function lengthControlledWinRate(items: LengthComparison[]): number {
  if (items.length === 0) throw new RangeError('lengthControlledWinRate: no comparisons');
  for (const [i, it] of items.entries()) {
    if (!Number.isFinite(it.outcome) || it.outcome < 0 || it.outcome > 1) {
      throw new RangeError(`lengthControlledWinRate: outcome ${it.outcome} of item ${i} is not in [0, 1]`);
    }
    if (!Number.isFinite(it.lengthDelta)) throw new RangeError(`lengthControlledWinRate: lengthDelta of item ${i} is not finite`);
  }
  const y = items.map((it) => it.outcome);
  const raw = mean(y);
  // All wins or all losses: the likelihood increases without bound in θ0 (σ(θ0) → 1 or 0); return the limit.
  if (raw === 1 || raw === 0) return raw;

  const sd = populationSd(items.map((it) => it.lengthDelta));
  const scale = sd > 0 ? sd : 1;
  const x = items.map((it) => Math.tanh(it.lengthDelta / scale));
  const lambda = LC_L2_PENALTY;

  // Penalised negative log-likelihood; with 0 < mean(y) < 1 and the ridge on θ1 it is strictly convex and bounded
  // below, so Newton with step halving converges to its unique minimum.
  const objective = (t0: number, t1: number): number => {
    let nll = 0;
    for (let i = 0; i < y.length; i++) {
      const eta = t0 + t1 * x[i];
      // −[y log σ(η) + (1−y) log σ(−η)] = y·softplus(−η) + (1−y)·softplus(η)
      nll += y[i] * softplus(-eta) + (1 - y[i]) * softplus(eta);
    }
    return nll + 0.5 * lambda * t1 * t1;
  };

  let t0 = logit(raw);
  let t1 = 0;
  let current = objective(t0, t1);
  for (let iter = 0; iter < 100; iter++) {
    let g0 = 0;
    let g1 = lambda * t1;
    let h00 = 0;
    let h01 = 0;
    let h11 = lambda;
    for (let i = 0; i < y.length; i++) {
      const p = sigmoid(t0 + t1 * x[i]);
      const r = p - y[i];
      const w = p * (1 - p);
      g0 += r;
      g1 += r * x[i];
      h00 += w;
      h01 += w * x[i];
      h11 += w * x[i] * x[i];
    }
    const det = h00 * h11 - h01 * h01;
    // A vanishing curvature (fitted probabilities saturated at 0/1) would make the Newton step meaningless; fall
    // back to a gradient step, which the line search below keeps descending.
    let d0: number;
    let d1: number;
    if (det > 1e-300 && Number.isFinite(det)) {
      d0 = -(h11 * g0 - h01 * g1) / det;
      d1 = -(h00 * g1 - h01 * g0) / det;
    } else {
      d0 = -g0;
      d1 = -g1;
    }
    let step = 1;
    let next = objective(t0 + d0, t1 + d1);
    while (!(next <= current) && step > 1e-10) {
      step /= 2;
      next = objective(t0 + step * d0, t1 + step * d1);
    }
    if (!(next <= current)) break; // no further descent possible: at the optimum to machine precision
    t0 += step * d0;
    t1 += step * d1;
    const improvement = current - next;
    current = next;
    if (Math.abs(step * d0) < 1e-12 && Math.abs(step * d1) < 1e-12) break;
    if (improvement < 1e-14 * Math.max(1, current)) break;
  }
  const lc = sigmoid(t0);
  return Number.isFinite(lc) ? Math.min(1, Math.max(0, lc)) : raw;
}

function populationSd(values: number[]): number {
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / values.length);
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function logit(p: number): number {
  return Math.log(p / (1 - p));
}
