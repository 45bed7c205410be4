/**
 * What issue 11's noise bar asks of the round-1 judge (pure; judge-requirement.spec.ts). The bar: under flipped seed
 * labels a configuration keeps at least half of what dpo-seed loses, i.e. its final win rate at noise rate r is at least
 *
 *   WR_c(0) − ½ (WR_dpo-seed(0) − WR_dpo-seed(r)).
 *
 * Across the self-annotating rows of one world and budget, the final win rate is close to a straight line in the
 * round-1 self-label accuracy (the judge's accuracy on the first self-labelled pairs). Each configuration sits at its
 * own offset from that line, so the requirement is read from the slope, anchored at the configuration's clean point:
 * the bar lets the final win rate fall by ½ dpo-seed's loss, so the judge may lose at most ½ loss_dpo / slope of its
 * clean round-1 accuracy. That allowance is set beside the accuracy the noisy seed's judge actually lost.
 */
import { BASELINE, type Row } from './summary';

export interface AccuracyFit {
  /** final win rate ≈ intercept + slope · round-1 self-label accuracy (least squares over rows). */
  intercept: number;
  slope: number;
  /** Coefficient of determination of the fit. */
  r2: number;
  /** Rows (configuration × noise rate, means over seeds) the line is fitted to. */
  points: number;
}

export interface JudgeRequirement {
  variant: string;
  noise: number;
  /** The final win rate the bar needs at this noise rate. */
  requiredWinRate: number;
  /** Round-1 self-label accuracy the configuration may lose against its clean run for that win rate, by the slope. */
  allowedAccuracyLoss: number;
  /** Round-1 self-label accuracy it lost: clean minus noisy (means over seeds). */
  accuracyLoss: number;
}

const roundOneAccuracy = (r: Row): number | null => r.self_label_accuracy[1] ?? null;

/** Least squares of the final win rate on the round-1 self-label accuracy; undefined with fewer than 3 rows or no spread. */
export function fitFinalOnAccuracy(rows: readonly Row[]): AccuracyFit | undefined {
  const points = rows.flatMap((r) => {
    const accuracy = roundOneAccuracy(r);
    return accuracy === null ? [] : [[accuracy, r.win_rate.mean] as const];
  });
  if (points.length < 3) return undefined;
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const mx = mean(points.map(([x]) => x));
  const my = mean(points.map(([, y]) => y));
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const syy = points.reduce((s, [, y]) => s + (y - my) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  if (!(sxx > 1e-12) || !(syy > 1e-12)) return undefined;
  const slope = sxy / sxx;
  return { intercept: my - slope * mx, slope, r2: (sxy * sxy) / (sxx * syy), points: points.length };
}

/**
 * Per self-annotating configuration and noise rate > 0 of one world and budget (rows of one noise table): the win rate
 * the bar needs, the round-1 accuracy the slope allows it to lose for that, and the accuracy it lost.
 */
export function judgeRequirements(rows: readonly Row[], fit: AccuracyFit): JudgeRequirement[] {
  const find = (variant: string, noise: number) => rows.find((r) => r.variant === variant && r.noise === noise);
  return rows.flatMap((row) => {
    const noisyAccuracy = roundOneAccuracy(row);
    const clean = find(row.variant, 0);
    const cleanAccuracy = clean ? roundOneAccuracy(clean) : null;
    const dpoClean = find(BASELINE, 0);
    const dpoNoisy = find(BASELINE, row.noise);
    if (row.noise === 0 || noisyAccuracy === null || cleanAccuracy === null || !clean || !dpoClean || !dpoNoisy || !(fit.slope > 0)) return [];
    const dpoLoss = dpoClean.win_rate.mean - dpoNoisy.win_rate.mean;
    return [{
      variant: row.variant,
      noise: row.noise,
      requiredWinRate: clean.win_rate.mean - 0.5 * dpoLoss,
      allowedAccuracyLoss: (0.5 * dpoLoss) / fit.slope,
      accuracyLoss: cleanAccuracy - noisyAccuracy,
    }];
  });
}
