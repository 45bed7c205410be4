import loadHighs, { type Highs } from 'highs';
import { assemble, zeroCostFraction } from './assemble';
import { prepare, ratio, type Prepared } from './problem';
import { InvalidProblemError, type DroProblem, type DroSolution } from './types';

/** The LP has 3·N·K ≈ 3N² columns; beyond this it is too slow to be a verification tool. */
export const LP_MAX_SAMPLES = 300;

/** Moved fractions this close to 0 or 1 are HiGHS's feasibility tolerance, not a split. */
const LP_SNAP = 1e-9;

/**
 * HiGHS's tightest accepted feasibility tolerances, because the tests hold the LP to the exact value within
 * 1e-9. Presolve finds little to remove in this LP and costs about a fifth of the time at N = 300.
 */
const HIGHS_OPTIONS = {
  output_flag: false,
  presolve: 'off',
  primal_feasibility_tolerance: 1e-10,
  dual_feasibility_tolerance: 1e-10,
} as const;

let highsRuntime: Promise<Highs> | undefined;

function highs(): Promise<Highs> {
  // Compiling the WebAssembly module is the slow part; do it once per process.
  highsRuntime ??= loadHighs();
  return highsRuntime;
}

/**
 * The proposal's program (Eq. 2-4), i.e. E&K Thm 4.4 program (13), as in docs/algorithm.md §4 "Reference LP"
 * (docs/dro.md §2.2(a)). −log ξ is convex, so it enters as the max of the affine chords between consecutive knots
 * {δ, ξ_1..ξ_N, 1−δ}; affine pieces are concave, which is what Assumption 4.1 needs, and at these knots the
 * LP value equals the exact worst case. With α_ik ≥ 0 and q_ik = q⁺_ik − q⁻_ik:
 *
 *   max Σ_i w_i Σ_k [s_k (α_ik ξ_i − q_ik) + c_k α_ik]
 *   s.t. Σ_k α_ik = 1,  Σ_i w_i Σ_k (q⁺_ik + q⁻_ik) ≤ ε,  δ α_ik ≤ α_ik ξ_i − q_ik ≤ (1−δ) α_ik.
 *
 * HiGHS solves it. The plan is read back in canonical form (docs/dro.md Lemma 1: mass moved to y < ξ_i is
 * replaced by the equal-cost move of a smaller mass to δ, which is what an optimal plan does anyway), so
 * m_i = Σ_k q⁺_ik / (ξ_i − δ). λ* and λ*_left are the ends of the dual-optimal interval that complementary
 * slackness allows for that plan; HiGHS's own budget-row dual is checked against it. With tied ξ the LP may
 * split more than one sample; `splitIndex` is then the first.
 * For verification only: at most LP_MAX_SAMPLES samples.
 * @throws InvalidProblemError
 */
export async function solveLp(p: DroProblem): Promise<DroSolution> {
  const prep = prepare(p);
  if (prep.n > LP_MAX_SAMPLES) {
    throw new InvalidProblemError(
      'log_xi',
      `has ${prep.n} samples; the LP mode is a verification tool and accepts at most ${LP_MAX_SAMPLES}`,
    );
  }
  const solver = await highs();
  const lp = buildLp(prep);
  // The persistent model hands the solution back as typed arrays; the one-shot solve() builds an object per
  // column, which costs as much as the solve itself at small N.
  const model = solver.createModel({ format: 'lp', data: lp.text });
  let value: number;
  let colValue: Float64Array;
  let budgetDual: number;
  try {
    model.options.set(HIGHS_OPTIONS);
    const run = model.run();
    if (run.modelStatus !== solver.constants.modelStatus.optimal) {
      throw new Error(`HiGHS did not solve the reference LP (model status ${run.modelStatus})`);
    }
    checkColumnOrder(model, lp);
    value = model.getObjectiveValue();
    const solution = model.getSolution();
    colValue = solution.colValue;
    budgetDual = Math.abs(solution.rowDual[model.getRowByName('budget')] as number);
  } finally {
    model.dispose();
  }

  const { n, delta, xi, w, epsilon } = prep;
  const m = new Float64Array(n);
  let lambdaR = 0;
  let lambdaL = Infinity;
  let splitIndex = -1;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    if (wi === 0 || x === delta) {
      m[i] = zeroCostFraction(wi, epsilon);
      continue;
    }
    let leftward = 0;
    for (let k = 0; k < lp.pieces; k++) {
      const col = lp.column(i, k);
      const q = (colValue[col + 1] as number) - (colValue[col + 2] as number);
      if (q > 0) leftward += q;
    }
    let mi = leftward / (x - delta);
    if (mi < LP_SNAP) mi = 0;
    else if (mi > 1 - LP_SNAP) mi = 1;
    m[i] = mi;
    const ri = ratio(x, delta);
    if (mi < 1) lambdaR = Math.max(lambdaR, ri);
    if (mi > 0) lambdaL = Math.min(lambdaL, ri);
    if (mi > 0 && mi < 1 && splitIndex < 0) splitIndex = i;
  }
  if (prep.saturated) {
    // Past ε_sat the budget row is slack, so its multiplier is 0; exactly at ε_sat it may be up to r_min.
    lambdaR = 0;
    if (epsilon > prep.epsSat) lambdaL = 0;
  }
  // With no budget nothing moves; what HiGHS's feasibility tolerance lets through is dust.
  if (epsilon === 0) m.fill(0);

  const warnings: string[] = [];
  const tol = 1e-6 * Math.max(1, lambdaR);
  if (!(budgetDual >= lambdaR - tol && budgetDual <= lambdaL * (1 + 1e-6) + tol)) {
    warnings.push(
      `HiGHS budget dual ${budgetDual} lies outside the complementary-slackness interval [${lambdaR}, ${lambdaL}]`,
    );
  }
  // Nothing with a cost moved (ε = 0): every λ ≥ λ_R is optimal and there is no left derivative to report.
  if (lambdaL === Infinity || epsilon === 0) lambdaL = lambdaR;
  return assemble(prep, { m, lambdaStar: lambdaR, lambdaStarLeft: lambdaL, value, splitIndex, warnings });
}

/**
 * The LP reader numbers columns in order of first appearance, which `buildLp` fixes by listing every column
 * in the objective; spot-check that instead of looking up all 3NK names.
 */
function checkColumnOrder(model: { getColByName(name: string): number }, lp: ReferenceLp): void {
  const n = lp.samples;
  for (const i of [0, n >> 1, n - 1]) {
    for (const k of [0, lp.pieces - 1]) {
      const col = lp.column(i, k);
      if (model.getColByName(`a${i}_${k}`) !== col || model.getColByName(`v${i}_${k}`) !== col + 2) {
        throw new Error(`HiGHS numbered the columns of the reference LP unexpectedly at a${i}_${k}`);
      }
    }
  }
}

export interface ReferenceLp {
  /** CPLEX LP text for HiGHS. */
  text: string;
  samples: number;
  /** K, the number of affine pieces. */
  pieces: number;
  /** Index of column α_ik; q⁺_ik and q⁻_ik follow it. */
  column(i: number, k: number): number;
}

/**
 * Writes program (13) with the chord pieces in CPLEX LP format. Columns: a{i}_{k} = α_ik, u{i}_{k} = q⁺_ik,
 * v{i}_{k} = q⁻_ik (all ≥ 0, the format's default bound).
 */
export function buildLp(prep: Prepared): ReferenceLp {
  const { n, delta, xi, w, epsilon } = prep;
  const knots = Array.from(new Set([delta, ...xi, 1 - delta])).sort((a, b) => a - b);
  const pieces = knots.length - 1;
  const start = new Float64Array(pieces);
  const lossAtStart = new Float64Array(pieces);
  const slope = new Float64Array(pieces);
  for (let k = 0; k < pieces; k++) {
    const t0 = knots[k] as number;
    const t1 = knots[k + 1] as number;
    start[k] = t0;
    lossAtStart[k] = -Math.log(t0);
    slope[k] = (Math.log(t0) - Math.log(t1)) / (t1 - t0);
  }

  const objective: string[] = [];
  const rows: string[] = [];
  const budget: string[] = [];
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    const assignment: string[] = [];
    for (let k = 0; k < pieces; k++) {
      const a = `a${i}_${k}`;
      const u = `u${i}_${k}`;
      const v = `v${i}_${k}`;
      const s = slope[k] as number;
      // s_k ξ_i + c_k, evaluated from the piece's own knot so that large slopes do not cancel against c_k.
      objective.push(term(wi * ((lossAtStart[k] as number) + s * (x - (start[k] as number))), a));
      objective.push(term(-wi * s, u), term(wi * s, v));
      assignment.push(term(1, a));
      budget.push(term(wi, u), term(wi, v));
      rows.push(` l${i}_${k}: ${term(x - delta, a)} - ${u} + ${v} >= 0`);
      rows.push(` h${i}_${k}: ${term(x - (1 - delta), a)} - ${u} + ${v} <= 0`);
    }
    rows.push(` s${i}: ${assignment.join(' ')} = 1`);
  }
  rows.push(` budget: ${budget.join(' ')} <= ${num(epsilon)}`);
  const text = [
    'Maximize',
    ` obj: ${objective.join(' ')}`,
    'Subject To',
    ...rows,
    'End',
    '',
  ].join('\n');
  return { text, samples: n, pieces, column: (i, k) => 3 * (i * pieces + k) };
}

function term(coefficient: number, name: string): string {
  // Zero coefficients are written too, so that every (i, k) has all three columns in the model.
  return coefficient < 0 ? `- ${num(-coefficient)} ${name}` : `+ ${num(coefficient)} ${name}`;
}

/** Shortest decimal that round-trips, so the LP sees the same doubles the other solvers use. */
function num(x: number): string {
  return String(x);
}
