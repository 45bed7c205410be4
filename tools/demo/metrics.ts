/**
 * The demo's evaluation statistics: pure functions over numbers, no I/O (unit-tested in metrics.spec.ts). The
 * length-controlled win rate is the coordinator's (eval/lc_win_rate, services/coordinator/src/run/length-controlled.ts).
 */

/** Mean with a 95% normal-approximation interval: mean ± 1.96·s/√n (s the sample standard deviation). */
export function meanWithCi(values: number[]): { mean: number; ci: [number, number] } {
  if (values.length === 0) throw new RangeError('meanWithCi: no values');
  const m = mean(values);
  if (values.length <= 1) return { mean: m, ci: [m, m] };
  const half = (1.96 * spread(values)) / Math.sqrt(values.length);
  return { mean: m, ci: [m - half, m + half] };
}

/**
 * Monte-Carlo estimate of KL(π‖π_init) from responses sampled from π: the mean over samples of
 * log π(y|x) − log π_init(y|x) (nats per response). Unbiased, but a single estimate can be negative.
 */
export function klEstimate(policyLogps: number[], initLogps: number[]): number {
  if (policyLogps.length !== initLogps.length) {
    throw new RangeError(`klEstimate: ${policyLogps.length} policy log-probabilities but ${initLogps.length} π_init ones`);
  }
  if (policyLogps.length === 0) throw new RangeError('klEstimate: no samples');
  let sum = 0;
  for (let i = 0; i < policyLogps.length; i++) sum += policyLogps[i] - initLogps[i];
  return sum / policyLogps.length;
}

/**
 * A judge's systematic leanings: for every feature name, the fraction of preference pairs whose chosen response has
 * the larger value, among the pairs where the two values differ (and both are finite numbers). 0.5 means no
 * leaning; features that never differ are omitted. Keys come out sorted by name.
 */
export function leanings(pairs: Array<{ chosen: Record<string, number>; rejected: Record<string, number> }>): Record<string, number> {
  const larger = new Map<string, number>();
  const differ = new Map<string, number>();
  for (const { chosen, rejected } of pairs) {
    for (const name of Object.keys(chosen)) {
      const c = chosen[name];
      const r = rejected[name];
      if (typeof c !== 'number' || typeof r !== 'number' || !Number.isFinite(c) || !Number.isFinite(r) || c === r) continue;
      differ.set(name, (differ.get(name) ?? 0) + 1);
      if (c > r) larger.set(name, (larger.get(name) ?? 0) + 1);
    }
  }
  const out: Record<string, number> = {};
  for (const name of [...differ.keys()].sort()) out[name] = (larger.get(name) ?? 0) / (differ.get(name) as number);
  return out;
}

/** Sample standard deviation (n − 1 denominator); 0 for fewer than two values. */
export function spread(values: number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (values.length - 1));
}

export function mean(values: number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}
