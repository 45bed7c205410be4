import { InvalidArgumentError } from '@alignment/errors';

/**
 * Public types of the Wasserstein-DRO adversary (docs/algorithm.md §4). Field meanings follow
 * `proto/alignment/v1/dro.proto`; this module has no gRPC dependency so the domain logic can be used and
 * tested without a network.
 */

/**
 * The radius of the type-1 Wasserstein ball, in ξ units.
 * - `epsilon`: absolute radius ε ≥ 0.
 * - `rho`: relative radius ρ ∈ [0, 1), ε = ρ·ε_sat, which never saturates (docs/algorithm.md §4) unless ε_sat = 0.
 */
export type Budget = { kind: 'epsilon'; value: number } | { kind: 'rho'; value: number };

/** One instance: the samples of one optimizer step (or a rolling window). */
export interface DroProblem {
  /** log ξ_i = log σ(βh_i); finite and ≤ 0. ξ outside [δ, 1−δ] is clipped onto it. */
  logXi: ArrayLike<number>;
  /** Optional non-negative sample weights, normalised to sum 1. Absent or empty means uniform 1/N. */
  weights?: ArrayLike<number>;
  budget: Budget;
  /** Support Ξ = [δ, 1−δ], 0 < δ < 0.5. There is no default: with δ = 0 the worst case is +∞. */
  delta: number;
}

/** One point mass of the worst-case distribution Q* (Eq. 2-5). */
export interface Atom {
  location: number;
  mass: number;
  /** The sample this mass came from. */
  sourceIndex: number;
  /** True when the adversary moved this mass to δ. */
  moved: boolean;
}

export interface DroSolution {
  /** Worst-case expected loss F = E_{Q*}[−log ξ]. */
  value: number;
  /** Σ_i w_i (−log ξ_i) on the clipped ξ: the DPO loss of the batch. */
  ermValue: number;
  /** dF/dε, the right derivative at a breakpoint; 0 when saturated. */
  lambdaStar: number;
  /** dF/dε from the left; equals `lambdaStar` except when the budget ends exactly at a breakpoint. */
  lambdaStarLeft: number;
  /** The radius used (ε, or ρ·ε_sat). */
  epsilon: number;
  /** Σ_i w_i (ξ_i − δ) = mean(ξ) − δ: the radius at which all mass sits at δ. */
  epsilonSat: number;
  /** ε ≥ ε_sat: F = −log δ and the gradient vanishes. */
  saturated: boolean;
  /** m_i = p_i / w_i ∈ [0, 1], the fraction of sample i moved to δ (0 for zero-weight samples). */
  movedFraction: Float64Array;
  /** ∂F/∂ξ_i = w_i [(1 − m_i) ℓ'(ξ_i) − m_i λ*] (Danskin / envelope, docs/algorithm.md §4). */
  gradXi: Float64Array;
  /** a_i = w_i (1 − m_i) of the training surrogate Σ_i a_i (−log ξ_i) − b_i ξ_i. */
  surrogateA: Float64Array;
  /** b_i = w_i m_i λ* of the training surrogate. */
  surrogateB: Float64Array;
  /**
   * Q* = Σ_i (w_i − p_i) δ_{ξ_i} + p_i δ_{δ} (Eq. 2-5): one atom per (sample, location) with positive mass, in
   * sample order, at most N + 1 (one split) from the exact and dual solvers. Built on first access.
   */
  atoms: Atom[];
  /** Dual objective at λ* minus the primal objective of the returned plan; ≈ 0 certifies optimality. */
  dualGap: number;
  /** Σ_i p_i (ξ_i − δ): the budget actually spent (≤ ε). */
  transportCost: number;
  /** Samples whose ξ was clipped onto [δ, 1−δ]. */
  nClipped: number;
  /** Samples with m_i > 0. */
  nMoved: number;
  /** The sample that is only partly moved; −1 when none. */
  splitIndex: number;
  /** Human-readable warnings (for example saturation). */
  warnings: string[];
}

/**
 * Thrown by every solver entry point when the problem is invalid (a client error, INVALID_ARGUMENT).
 * `field` is the request field's proto name in snake_case (`log_xi`, `weights`, `epsilon`, `rho`, `budget`,
 * `delta`, `mode`) so a user can find it; `reason` says what is wrong with it. It is an InvalidArgumentError
 * (transport-free, @alignment/errors), so the service passes it through unchanged.
 */
export class InvalidProblemError extends InvalidArgumentError {
  constructor(field: string, reason: string) {
    super(field, reason);
    this.name = 'InvalidProblemError';
  }
}
