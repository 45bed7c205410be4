import type { RoundEvaluation } from '../demo/results';
import { NOT_MEASURED, renderBook, tableKey } from './book';
import { expandCells, type Cell, type CellResult } from './cells';
import { parsePlan } from './plan';
import { summarise } from './summary';

const PLAN = `
recommended: wdro
sections:
  main: {worlds: [arithmetic], configs: [dpo-seed, spa, wdro], budgets: [1500], seeds: [1, 2, 3]}
  judges: {worlds: [arithmetic], configs: [spa], budgets: [1500], seeds: [1, 2, 3]}
  seed_size: {worlds: [arithmetic], configs: [dpo-seed, wdro], budgets: [300, 1500], seeds: [1, 2]}
  noise: {worlds: [arithmetic], configs: [dpo-seed, wdro], budgets: [1500], seeds: [1, 2, 3], noise: [0, 0.2]}
`;

/** Synthetic final win rates per variant, noise rate and seed (round 0 is always 0.48, below π_init). */
const FINAL: Record<string, Record<number, number[]>> = {
  'dpo-seed': { 0: [0.55, 0.56, 0.54], 0.2: [0.45, 0.46, 0.44] },
  spa: { 0: [0.5, 0.62, 0.56] },
  wdro: { 0: [0.6, 0.62, 0.61], 0.2: [0.56, 0.58, 0.57] },
};

function evaluation(round: number, winRate: number, accuracy: number | null): RoundEvaluation {
  return {
    round, win_rate: winRate, win_rate_ci: [winRate - 0.05, winRate + 0.05], lc_win_rate: winRate, gold_reward: 1, gold_reward_ci: [0.9, 1.1],
    init_gold_reward: 0.8, init_gold_reward_ci: [0.7, 0.9], mean_length: 20 + round, init_mean_length: 20, kl: 0.1 * round, self_label_accuracy: accuracy,
    dropped_pairs: round > 0 ? 2 : null, leanings: round > 0 ? { correct: 0.7, words: 0.4 + 0.1 * round } : {},
  };
}

function synthetic(cell: Cell): CellResult {
  const index = [1, 2, 3].indexOf(cell.seed);
  const final = FINAL[cell.variant.name][cell.noise][index] + (cell.budget === 300 ? -0.05 : 0);
  const selfAnnotating = cell.variant.config !== 'dpo-seed';
  const rounds = selfAnnotating ? [evaluation(0, 0.48, null), evaluation(1, 0.52, 0.7), evaluation(2, final, 0.6)] : [evaluation(0, final, null)];
  return {
    id: cell.id, world: cell.world, variant: cell.variant.name, config: cell.variant.config, overrides: {}, budget: cell.budget, seed: cell.seed,
    noise: cell.noise, settings: cell.settings, cpu_capability: 'avx2', seed_pairs: { prompts: cell.budget / 30, pairs: cell.budget / 30 - 1, dropped: 1 },
    result: { seed: cell.seed, run_id: cell.id, rounds, seconds: 10 }, finished_at: '2026-01-01T00:00:00Z',
  };
}

describe('the results book', () => {
  const plan = parsePlan(PLAN, 'test');
  const cells = expandCells(plan, 'avx2');
  const finished = new Map(cells.map((c) => [c.id, synthetic(c)]));
  const sections = summarise(cells, finished, plan.recommended);
  const plots = new Map([[tableKey('main', 'arithmetic', 1500, 0), ['plots/main-arithmetic-1500-n0/win_rate_by_round.png']]]);
  const book = renderBook({ plan: 'test', planFile: 'experiments/test.yaml', createdAt: '2026-01-02T03:04:05Z', totalCells: cells.length, finishedCells: cells.length, sections, plots });
  const rowOf = (section: string, variant: string, noise = 0, budget = 1500) =>
    sections.find((s) => s.name === section)!.rows.find((r) => r.variant === variant && r.noise === noise && r.budget === budget)!;
  const line = (start: string, after = '') => book.slice(book.indexOf(after)).split('\n').find((l) => l.startsWith(start))!;

  it('prints the plan\'s findings between the introduction and the first section', () => {
    const withFindings = renderBook({ plan: 'test', planFile: 'experiments/test.yaml', createdAt: '2026-01-02T03:04:05Z', totalCells: 1, finishedCells: 1, sections, plots, findings: '### What moved\n\nwdro rose.\n' });
    expect(withFindings.indexOf('### What moved\n\nwdro rose.')).toBeGreaterThan(withFindings.indexOf('Raw figures'));
    expect(withFindings.indexOf('### What moved')).toBeLessThan(withFindings.indexOf('## Main'));
    expect(book).not.toContain('### What moved');
  });

  it('has the five sections, headed exactly as issue 11 asks, in order', () => {
    const headings = book.split('\n').filter((l) => l.startsWith('## '));
    expect(headings).toEqual(['## Main', '## Judges', '## Seed size', '## Ablation', '## Noise']);
  });

  it('says a section without cells was not measured, and shows no numbers there', () => {
    const ablation = book.slice(book.indexOf('## Ablation'), book.indexOf('## Noise'));
    expect(ablation.trim()).toBe(`## Ablation\n\n${NOT_MEASURED}`);
    const empty = renderBook({ plan: 'x', planFile: 'x.yaml', createdAt: '2026-01-02T03:04:05Z', totalCells: 3, finishedCells: 0, sections: summarise(cells, new Map(), []), plots: new Map() });
    expect(empty.match(/not measured in this campaign/g)).toHaveLength(5);
    expect(empty).not.toMatch(/\d\.\d{3}/);
    expect(empty).toContain('from 0 of 3 cells (the others have not finished');
  });

  it("reports the final win rate with a between-seed t-interval and the paired difference to dpo-seed", () => {
    const wdro = rowOf('main', 'wdro');
    expect(wdro.win_rate.mean).toBeCloseTo(0.61, 12);
    // seeds 0.60, 0.62, 0.61: s = 0.01, half-width 4.303·0.01/√3 = 0.02484.
    expect(wdro.win_rate.ci![0]).toBeCloseTo(0.61 - 0.024843, 5);
    // differences to dpo-seed 0.05, 0.06, 0.07: mean 0.06, the same half-width: excludes zero, so it is bold.
    expect(wdro.vs_dpo_seed!.mean).toBeCloseTo(0.06, 12);
    expect(line('| wdro ★ |')).toBe('| wdro ★ | 3 | 0.610 [0.585, 0.635] | **+0.060 [0.035, 0.085]** | 0.480 (s1 r0) ⚠ 3 below π_init | r1 0.700 → r2 0.600 | 0.200 | 22.0 |');
    // spa: differences −0.05, 0.06, 0.02 — the interval straddles zero: not bold.
    expect(line('| spa |')).toMatch(/^\| spa \| 3 \| 0\.560 \[[0-9.]+, [0-9.]+\] \| \+0\.010 \[-[0-9.]+, [0-9.]+\] \|/);
    expect(line('| dpo-seed |')).toBe('| dpo-seed | 3 | 0.550 [0.525, 0.575] | (baseline) | 0.540 (s3 r0), none below π_init | — | 0.000 | 20.0 |');
    expect(book).toContain('![win rate by round](plots/main-arithmetic-1500-n0/win_rate_by_round.png)');
  });

  it('marks the recommended configuration in every section it appears in', () => {
    for (const section of sections) for (const row of section.rows) expect(row.recommended).toBe(row.variant === 'wdro');
  });

  it('shows the judges: self-label accuracy and leanings per round', () => {
    const judges = book.slice(book.indexOf('## Judges'), book.indexOf('## Seed size'));
    expect(judges).toContain('| spa | 1 | 0.700 | correct 0.70, words 0.50 |');
    expect(judges).toContain('| spa | 2 | 0.600 | correct 0.70, words 0.60 |');
  });

  it('shows self-label accuracy and win rate against the prompt budget', () => {
    const seedSize = book.slice(book.indexOf('## Seed size'), book.indexOf('## Ablation'));
    expect(seedSize).toContain('| wdro ★ | 300 | 9.0 | r1 0.700 → r2 0.600 |');
    expect(seedSize).toContain('| wdro ★ | 1500 | 49.0 | r1 0.700 → r2 0.600 |');
    expect(rowOf('seed_size', 'wdro', 0, 300).win_rate.mean).toBeCloseTo(0.56, 12);
  });

  it("shows per noise rate the win rate and the fraction of dpo-seed's loss kept", () => {
    // dpo-seed loses 0.55 − 0.45 = 0.10 at 20%; wdro 0.61 − 0.57 = 0.04: it keeps 1 − 0.04/0.10 = 0.6.
    const noise = book.slice(book.indexOf('## Noise'));
    expect(noise).toContain("| configuration | win rate, 0% | win rate, 20% | dpo-seed's loss kept, 20% |");
    expect(line('| wdro ★ |', '## Noise')).toMatch(/^\| wdro ★ \| 0\.610 \[.*\] \| 0\.570 \[.*\] \| 0\.600 \|$/);
    expect(line('| dpo-seed |', '## Noise')).toMatch(/\| \(baseline\) \|$/);
  });
});

describe('a plan with a tuned baseline (dpo-seed at its best screened setting)', () => {
  const plan = parsePlan(
    `
tuned_baseline: {arithmetic: dpo-seed-fast}
variants:
  - {name: dpo-seed-fast, config: dpo-seed, overrides: {seed_training: {learning_rate: 1.0e-4}}}
sections:
  main: {worlds: [arithmetic], configs: [dpo-seed, wdro], budgets: [1500], seeds: [1, 2, 3]}
  ablation: {worlds: [arithmetic], configs: [dpo-seed-fast], budgets: [1500], seeds: [1, 2]}
  noise: {worlds: [arithmetic], configs: [dpo-seed, dpo-seed-fast, wdro], budgets: [1500], seeds: [1, 2, 3], noise: [0, 0.2]}
`,
    'tuned',
  );
  const cells = expandCells(plan, 'avx2');
  // The tuned baseline: final 0.60, 0.60, 0.61 clean and 0.50, 0.52, 0.51 at 20% (it loses 0.093).
  const FAST: Record<number, number[]> = { 0: [0.6, 0.6, 0.61], 0.2: [0.5, 0.52, 0.51] };
  const finished = new Map<string, CellResult>(
    cells.map((c): [string, CellResult] => {
      if (c.variant.name !== 'dpo-seed-fast') return [c.id, synthetic(c)];
      const r = synthetic({ ...c, variant: { ...c.variant, name: 'dpo-seed' } });
      const final = FAST[c.noise][[1, 2, 3].indexOf(c.seed)];
      return [c.id, { ...r, variant: 'dpo-seed-fast', result: { ...r.result, rounds: [evaluation(0, final, null)] } }];
    }),
  );
  const sections = summarise(cells, finished, plan.recommended, plan.tunedBaseline);
  const book = renderBook({ plan: 'tuned', planFile: 'experiments/tuned.yaml', createdAt: '2026-01-02T03:04:05Z', totalCells: cells.length, finishedCells: cells.length, sections, plots: new Map() });

  it('names the tuned baseline per world in the introduction', () => {
    expect(plan.tunedBaseline).toEqual({ arithmetic: 'dpo-seed-fast' });
    expect(book).toContain('per world: dpo-seed-fast on arithmetic)');
  });

  it('refuses a tuned baseline that is not one of the plan\'s variants, naming the key', () => {
    expect(() => parsePlan('tuned_baseline: nope\nsections:\n  main: {worlds: [arithmetic], configs: [wdro], budgets: [1500], seeds: [1]}\n', 'x')).toThrow(/^tuned_baseline: "nope" is not a variant/);
    expect(() => parsePlan('tuned_baseline: {arithmetic: nope}\nsections:\n  main: {worlds: [arithmetic], configs: [wdro], budgets: [1500], seeds: [1]}\n', 'x')).toThrow(/^tuned_baseline.arithmetic: "nope"/);
    expect(() => parsePlan('tuned_baseline: {listing: wdro}\nsections:\n  main: {worlds: [arithmetic], configs: [wdro], budgets: [1500], seeds: [1]}\n', 'x')).toThrow(/^tuned_baseline.listing: unknown key/);
    expect(() => parsePlan('tuned_baseline: dpo-seed\nsections:\n  main: {worlds: [arithmetic], configs: [dpo-seed], budgets: [1500], seeds: [1]}\n', 'x')).toThrow(/^tuned_baseline:/);
  });

  it("differences Main's rows against the tuned baseline's cells of another section, over the seeds both have", () => {
    const wdro = sections.find((s) => s.name === 'main')!.rows.find((r) => r.variant === 'wdro')!;
    // The tuned baseline's clean cells: seeds 1-2 are Ablation's and Noise's at once (one cell id each), seed 3 is
    // Noise's only. wdro 0.60, 0.62, 0.61 against 0.60, 0.60, 0.61: differences 0, 0.02, 0.
    expect(wdro.vs_tuned_baseline!.mean).toBeCloseTo((0 + 0.02 + 0) / 3, 12);
    expect(book).toContain('| configuration | seeds | final win rate [95% CI over seeds] | Δ vs dpo-seed [paired 95% CI] | Δ vs dpo-seed-fast [paired 95% CI, shared seeds] |');
    expect(book).toMatch(/\| dpo-seed \| 3 \| [^|]+ \| \(baseline\) \| — \|/);
  });

  it("adds the tuned baseline's loss-kept column to the noise table", () => {
    const noise = book.slice(book.indexOf('## Noise'));
    expect(noise).toContain("| configuration | win rate, 0% | win rate, 20% | dpo-seed's loss kept, 20% | dpo-seed-fast's loss kept, 20% |");
    // wdro loses 0.61 − 0.57 = 0.04; dpo-seed-fast 0.60333 − 0.51 = 0.09333: kept 1 − 0.04/0.09333 = 0.571.
    expect(noise).toMatch(/\| wdro \| 0\.610 \[[^|]+\] \| 0\.570 \[[^|]+\] \| 0\.600 \| 0\.571 \|/);
    expect(noise).toMatch(/\| dpo-seed-fast \| [^|]+ \| [^|]+ \| [^|]+ \| \(baseline\) \|/);
  });
});
