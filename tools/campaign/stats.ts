/**
 * The book's statistics over seeds (pure functions, unit-tested in stats.spec.ts). Intervals are taken over run seeds,
 * not over prompts: issue 11 measured prompt-level intervals of one seed to understate the spread about three-fold.
 */

/** Two-sided 95% quantiles t_{0.975, df} of Student's t for df = 1..30. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074,
  2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** t_{0.975, df}: the table up to 30, then the Cornish-Fisher expansion around z = 1.96 (error < 1e-3). */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new RangeError(`tQuantile975: degrees of freedom must be a positive integer, got ${df}`);
  if (df <= T975.length) return T975[df - 1];
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

export interface Estimate {
  mean: number;
  /** 95% t-interval over seeds: mean ± t_{0.975, n−1}·s/√n; null with fewer than two seeds. */
  ci: [number, number] | null;
  n: number;
}

/** Mean and 95% between-seed t-interval of one value per seed. */
export function betweenSeeds(values: number[]): Estimate {
  if (values.length === 0) throw new RangeError('betweenSeeds: no values');
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, ci: null, n };
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const half = (tQuantile975(n - 1) * sd) / Math.sqrt(n);
  return { mean, ci: [mean - half, mean + half], n };
}

/**
 * The paired difference a − b over the seeds both have (the cells of one seed share the base model and the seed
 * pairs, so the pairing removes their variation): the between-seed t-interval of the per-seed differences.
 * Undefined when no seed is shared.
 */
export function pairedDifference(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): Estimate | undefined {
  const diffs = [...a.keys()].filter((seed) => b.has(seed)).sort((x, y) => x - y).map((seed) => a.get(seed)! - b.get(seed)!);
  return diffs.length === 0 ? undefined : betweenSeeds(diffs);
}

/**
 * The fraction of dpo-seed's loss a configuration keeps under label noise (issue 11's goal: at 20% and 40% flipped
 * seed labels, keep at least half of what dpo-seed loses):
 *
 *   loss_c = WR_c(0) − WR_c(r),   loss_dpo = WR_dpo-seed(0) − WR_dpo-seed(r),   kept = 1 − loss_c / loss_dpo
 *
 * with WR the final round's gold win rate against π_init, mean over seeds. kept = 1: the configuration lost nothing;
 * 0.5: it lost half of what dpo-seed lost (the goal's bar); 0: as much; < 0: more; > 1: it gained. Undefined when
 * dpo-seed lost nothing (loss_dpo ≤ 0), where the ratio has no meaning.
 */
export function lossKept(config: { clean: number; noisy: number }, dpoSeed: { clean: number; noisy: number }): number | undefined {
  const dpoLoss = dpoSeed.clean - dpoSeed.noisy;
  if (!(dpoLoss > 0)) return undefined;
  return 1 - (config.clean - config.noisy) / dpoLoss;
}
