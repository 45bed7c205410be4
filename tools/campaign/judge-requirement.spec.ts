import { renderBook } from './book';
import { fitFinalOnAccuracy, judgeRequirements } from './judge-requirement';
import type { Row } from './summary';

/** A noise-table row with only what the requirement reads: variant, noise, final win rate, round-1 accuracy. */
function row(variant: string, noise: number, winRate: number, accuracy: number | null): Row {
  return {
    section: 'noise', world: 'arithmetic', budget: 15000, noise, variant, config: variant, recommended: false, seeds: [1, 2, 3],
    win_rate: { mean: winRate, ci: [winRate - 0.01, winRate + 0.01], n: 3 }, vs_dpo_seed: null,
    min_win_rate: { value: winRate, seed: 1, round: 2 }, rounds_below_init: 0,
    self_label_accuracy: accuracy === null ? [null] : [null, accuracy, accuracy - 0.05], leanings: [],
    win_rate_by_round: [0.5, winRate], lc_win_rate: winRate, kl: 0.1, mean_length: 20, init_mean_length: 20, seed_pairs: 450, cells: [],
  };
}

// Final win rate = −0.4 + 1.3 × accuracy exactly, on three self-annotating rows; dpo-seed loses 0.60 → 0.56 → 0.52.
const ROWS = [
  row('dpo-seed', 0, 0.6, null), row('dpo-seed', 0.2, 0.56, null), row('dpo-seed', 0.4, 0.52, null),
  row('wdro', 0, -0.4 + 1.3 * 0.9, 0.9), row('wdro', 0.2, -0.4 + 1.3 * 0.8, 0.8), row('wdro', 0.4, -0.4 + 1.3 * 0.66, 0.66),
];

describe("what the noise bar asks of the judge", () => {
  it('fits the final win rate on the round-1 self-label accuracy, self-annotating rows only', () => {
    const fit = fitFinalOnAccuracy(ROWS)!;
    expect(fit.points).toBe(3);
    expect(fit.intercept).toBeCloseTo(-0.4, 10);
    expect(fit.slope).toBeCloseTo(1.3, 10);
    expect(fit.r2).toBeCloseTo(1, 10);
  });

  it('has no fit with fewer than three rows or no spread in accuracy', () => {
    expect(fitFinalOnAccuracy(ROWS.slice(0, 5))).toBeUndefined();
    expect(fitFinalOnAccuracy([row('a', 0, 0.6, 0.8), row('b', 0.2, 0.5, 0.8), row('c', 0.4, 0.4, 0.8)])).toBeUndefined();
  });

  it("allows the judge to lose half of dpo-seed's loss over the slope, beside what it lost", () => {
    const needs = judgeRequirements(ROWS, fitFinalOnAccuracy(ROWS)!);
    // At 40%: the bar needs 0.77 − ½ (0.60 − 0.52) = 0.73; the judge may lose 0.04 / 1.3 = 0.0308 of 0.90 and lost 0.24.
    expect(needs.map((n) => [n.variant, n.noise])).toEqual([['wdro', 0.2], ['wdro', 0.4]]);
    expect(needs[1].requiredWinRate).toBeCloseTo(0.77 - 0.04, 10);
    expect(needs[1].allowedAccuracyLoss).toBeCloseTo(0.04 / 1.3, 10);
    expect(needs[1].accuracyLoss).toBeCloseTo(0.24, 10);
  });

  it('leaves out configurations without a clean run', () => {
    expect(judgeRequirements(ROWS.filter((r) => !(r.variant === 'wdro' && r.noise === 0)), fitFinalOnAccuracy(ROWS)!)).toEqual([]);
  });

  it('prints the line and the table under the noise table of the book', () => {
    const book = renderBook({
      plan: 't', planFile: 'p.yaml', createdAt: '2026-01-02T03:04:05Z', totalCells: 6, finishedCells: 6,
      sections: [{ name: 'noise', rows: ROWS }], plots: new Map(),
    });
    expect(book).toContain('final win rate ≈ -0.400 + 1.300 × round-1 self-label accuracy (r² = 1.00)');
    expect(book).toContain('| wdro | 40% | 0.730 | 0.031 | 0.240 |');
  });
});
