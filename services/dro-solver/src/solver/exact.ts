import { assemble, zeroCostFraction, type Plan } from './assemble';
import { prepare, ratio, type Prepared } from './problem';
import type { DroProblem, DroSolution } from './types';

/**
 * The closed form of docs/algorithm.md §4 (docs/dro.md §2.2(c), fractional knapsack): ℓ = −log ξ is convex and
 * decreasing, so the adversary only moves mass to δ, at gain r_i per unit of budget, and r_i falls as ξ_i
 * rises. Moving whole samples to δ in ascending ξ (ties by index) until ε is spent, splitting at most one,
 * is optimal; F = ERM + Σ_i p_i (ℓ(δ) − ℓ(ξ_i)) and Q* is Eq. 2-5.
 *
 * Only the samples up to the split need an order, so instead of sorting, a bucket pass plus a weighted
 * quickselect finds the ξ level at which the cumulative cost crosses ε (expected O(N)), and one pass in
 * index order applies it; samples tied at that level are taken in index order, which keeps the result
 * deterministic.
 *
 * λ* is the right derivative dF/dε: r of the split sample, or, when the budget ends exactly after a whole
 * sample, r of the next one (with `lambdaStarLeft` = r of the last one moved). At ε = 0, λ* = r of the
 * smallest ξ > δ. Saturated (ε ≥ ε_sat): F = −log δ, m = 1, λ* = 0.
 * @throws InvalidProblemError
 */
export function solveExact(p: DroProblem): DroSolution {
  const prep = prepare(p);
  if (prep.saturated) return assemble(prep, saturatedPlan(prep));

  const { n, delta, xi, w, gain, epsilon } = prep;
  const cut = findCutLevel(prep);
  const level = cut.level;
  const m = new Float64Array(n);
  let totalGain = 0;
  let maxBelow = -Infinity; // largest positive-cost ξ moved whole below the level: r there is the left slope
  let minAbove = Infinity;
  const ties: number[] = [];
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    if (wi === 0 || x === delta) {
      m[i] = zeroCostFraction(wi, epsilon);
    } else if (x < level) {
      m[i] = 1;
      totalGain += wi * (gain[i] as number);
      if (x > maxBelow) maxBelow = x;
    } else if (x > level) {
      if (x < minAbove) minAbove = x;
    } else {
      ties.push(i);
    }
  }

  let cum = cut.cumBelow;
  let splitIndex = -1;
  let lambdaStar = NaN;
  let lambdaStarLeft = maxBelow > -Infinity ? ratio(maxBelow, delta) : NaN;
  const rLevel = ratio(level, delta);
  let broke = false;
  for (const i of ties) {
    const wi = w[i] as number;
    const c = wi * (level - delta);
    if (cum + c <= epsilon) {
      m[i] = 1;
      cum += c;
      totalGain += wi * (gain[i] as number);
      lambdaStarLeft = rLevel;
      continue;
    }
    const mi = (epsilon - cum) / c;
    m[i] = mi;
    lambdaStar = rLevel;
    if (mi > 0) {
      splitIndex = i;
      totalGain += mi * wi * (gain[i] as number);
      lambdaStarLeft = rLevel;
    }
    broke = true;
    break;
  }
  if (!broke) {
    // Only reachable when rounding in the summation order let the whole level fit: the budget then ends
    // right after it, and the next sample up (if any) sets the right derivative.
    lambdaStar = minAbove < Infinity ? ratio(minAbove, delta) : rLevel;
    lambdaStarLeft = rLevel;
  }
  // At ε = 0 (or before anything with a cost moved) there is no left slope; report the right one.
  if (Number.isNaN(lambdaStarLeft) || epsilon === 0) lambdaStarLeft = lambdaStar;

  return assemble(prep, {
    m,
    lambdaStar,
    lambdaStarLeft,
    value: prep.erm + totalGain,
    splitIndex,
  });
}

/** Saturation (ε ≥ ε_sat): everything with mass and a cost moves; F = ℓ(δ) and λ* = 0. */
export function saturatedPlan(prep: Prepared): Plan {
  const { n, delta, xi, w, epsilon } = prep;
  const m = new Float64Array(n);
  let maxXi = -Infinity;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    if (wi > 0 && x > delta) {
      m[i] = 1;
      if (x > maxXi) maxXi = x;
    } else {
      m[i] = zeroCostFraction(wi, epsilon);
    }
  }
  // Exactly at ε_sat the left derivative is still r of the last sample to move; beyond it F is flat.
  const lambdaStarLeft = epsilon === prep.epsSat && maxXi > -Infinity ? ratio(maxXi, delta) : 0;
  return { m, lambdaStar: 0, lambdaStarLeft, value: prep.lossDelta, splitIndex: -1 };
}

export interface Cut {
  /** The ξ level at which the cumulative cost first exceeds ε. */
  level: number;
  /** Σ w_i (ξ_i − δ) over samples strictly below the level. */
  cumBelow: number;
}

/** Above this many element visits per sample the quickselect is being fed adversarial pivots: sort instead. */
const MAX_SELECT_WORK_PER_SAMPLE = 16;

/** Samples per bucket of the first pass, on average; the most buckets is 2^16. */
const SAMPLES_PER_BUCKET = 8;

/**
 * The smallest level L with Σ_{ξ_i < L} c_i ≤ ε < Σ_{ξ_i ≤ L} c_i, where c_i = w_i (ξ_i − δ) over the samples
 * with a positive cost. One pass sums the costs into equal-width buckets of [δ, 1−δ] (the bucket index is
 * monotone in ξ, so tied samples share a bucket and buckets are ordered); a weighted quickselect then
 * searches only the bucket where the cumulative cost crosses ε. Expected O(N); the quickselect falls back to
 * sorting if its pivots keep failing, so the worst case stays O(N log N).
 */
export function findCutLevel(prep: Prepared, maxWorkPerSample = MAX_SELECT_WORK_PER_SAMPLE): Cut {
  const { n, delta, xi, w, epsilon } = prep;
  const buckets = Math.min(1 << 16, Math.max(1, Math.floor(n / SAMPLES_PER_BUCKET)));
  const scale = buckets / (1 - 2 * delta);
  const top = buckets - 1;
  const bucketCost = new Float64Array(buckets);
  const bucketCount = new Uint32Array(buckets);
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    if (wi > 0 && x > delta) {
      const b = Math.min(top, ((x - delta) * scale) | 0);
      bucketCost[b] = (bucketCost[b] as number) + wi * (x - delta);
      bucketCount[b] = (bucketCount[b] as number) + 1;
    }
  }
  let base = 0;
  let cutBucket = -1;
  let lastFilled = -1;
  for (let b = 0; b < buckets; b++) {
    if (bucketCount[b] === 0) continue;
    if (base + (bucketCost[b] as number) > epsilon) {
      cutBucket = b;
      break;
    }
    base += bucketCost[b] as number;
    lastFilled = b;
  }
  if (cutBucket < 0) {
    // Everything fitted: only possible when ε < ε_sat by less than the rounding of the sums. Search the last
    // bucket, whose largest level then ends the budget.
    cutBucket = lastFilled;
    base -= bucketCost[lastFilled] as number;
  }

  const size = bucketCount[cutBucket] as number;
  const vals = new Float64Array(size);
  const costs = new Float64Array(size);
  for (let i = 0, j = 0; i < n && j < size; i++) {
    const wi = w[i] as number;
    const x = xi[i] as number;
    if (wi > 0 && x > delta && Math.min(top, ((x - delta) * scale) | 0) === cutBucket) {
      vals[j] = x;
      costs[j] = wi * (x - delta);
      j++;
    }
  }
  return selectCut(vals, costs, base, epsilon, maxWorkPerSample);
}

/** Weighted quickselect of the cut level among `vals`, whose lower levels already cost `base`. */
function selectCut(vals: Float64Array, costs: Float64Array, base: number, epsilon: number, maxWorkPerSample: number): Cut {
  const k = vals.length;
  let lo = 0;
  let hi = k;
  let last: Cut = { level: NaN, cumBelow: base };
  let work = 0;
  // A fixed-seed xorshift keeps pivots (and therefore rounding in the sums) reproducible run to run.
  let seed = 0x9e3779b9;
  const randomIn = (a: number, b: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return a + ((seed >>> 0) % (b - a));
  };
  while (lo < hi) {
    if (work >= maxWorkPerSample * k) return cutBySorting(vals, costs, lo, hi, base, epsilon, last);
    work += hi - lo;
    const pivot = medianOf3(
      vals[randomIn(lo, hi)] as number,
      vals[randomIn(lo, hi)] as number,
      vals[randomIn(lo, hi)] as number,
    );
    // Three-way partition [lo, hi) into < pivot | == pivot | > pivot, summing costs as it goes.
    let lt = lo;
    let i = lo;
    let gt = hi;
    let sumLess = 0;
    let sumEq = 0;
    while (i < gt) {
      const x = vals[i] as number;
      if (x < pivot) {
        const c = costs[i] as number;
        vals[i] = vals[lt] as number;
        costs[i] = costs[lt] as number;
        vals[lt] = x;
        costs[lt] = c;
        sumLess += c;
        lt++;
        i++;
      } else if (x > pivot) {
        gt--;
        const c = costs[i] as number;
        vals[i] = vals[gt] as number;
        costs[i] = costs[gt] as number;
        vals[gt] = x;
        costs[gt] = c;
      } else {
        sumEq += costs[i] as number;
        i++;
      }
    }
    if (base + sumLess > epsilon) {
      hi = lt;
    } else if (base + sumLess + sumEq > epsilon) {
      return { level: pivot, cumBelow: base + sumLess };
    } else {
      last = { level: pivot, cumBelow: base + sumLess };
      base += sumLess + sumEq;
      lo = gt;
    }
  }
  // Everything fitted (see findCutLevel): the largest level ends the budget.
  return last;
}

function cutBySorting(
  vals: Float64Array,
  costs: Float64Array,
  lo: number,
  hi: number,
  base: number,
  epsilon: number,
  last: Cut,
): Cut {
  const order = new Uint32Array(hi - lo);
  for (let j = 0; j < order.length; j++) order[j] = lo + j;
  order.sort((a, b) => (vals[a] as number) - (vals[b] as number));
  let j = 0;
  while (j < order.length) {
    const level = vals[order[j] as number] as number;
    let sumEq = 0;
    while (j < order.length && vals[order[j] as number] === level) sumEq += costs[order[j++] as number] as number;
    if (base + sumEq > epsilon) return { level, cumBelow: base };
    last = { level, cumBelow: base };
    base += sumEq;
  }
  return last;
}

function medianOf3(a: number, b: number, c: number): number {
  return a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
}
