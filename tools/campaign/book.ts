/**
 * RESULTS.md, the campaign's results book (pure rendering; book.spec.ts). One `## ` heading per book section, in
 * the order and with the names issue 11 fixes (Main, Judges, Seed size, Ablation, Noise), each with the tables
 * docs/benchmark.md asks for; a section without finished cells says "not measured in this campaign".
 */
import type { SectionName } from './plan';
import { fitFinalOnAccuracy, judgeRequirements } from './judge-requirement';
import { lossKept, type Estimate } from './stats';
import { BASELINE, type Row, type SectionSummary } from './summary';

export const SECTION_TITLES: Record<SectionName, string> = {
  main: 'Main',
  judges: 'Judges',
  seed_size: 'Seed size',
  ablation: 'Ablation',
  noise: 'Noise',
};

export const NOT_MEASURED = '_not measured in this campaign_';

export interface BookInput {
  plan: string;
  planFile: string;
  createdAt: string;
  totalCells: number;
  finishedCells: number;
  sections: SectionSummary[];
  /** Plot files per table (tableKey), relative to the book's directory. */
  plots: ReadonlyMap<string, string[]>;
  /** The plan's findings (Markdown, no '#'/'##' headings), printed before the sections. */
  findings?: string;
}

const DASH = '—';
const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : DASH);
const signed = (v: number): string => (v >= 0 ? `+${f3(v)}` : f3(v));
const pct = (noise: number): string => `${Number((noise * 100).toFixed(2))}%`;

/** The key of one table's plots: section, world, budget and noise rate. */
export function tableKey(section: SectionName, world: string, budget: number, noise: number): string {
  return `${section}-${world}-${budget}-n${Number(noise.toFixed(4))}`;
}

function estimate(e: Estimate, fmt: (v: number) => string = f3): string {
  return e.ci ? `${fmt(e.mean)} [${f3(e.ci[0])}, ${f3(e.ci[1])}]` : `${fmt(e.mean)} (1 seed)`;
}

/** A paired difference; bold when its 95% between-seed interval excludes zero. */
function pairedText(d: Estimate | null | undefined): string {
  if (!d) return DASH;
  const text = estimate(d, signed);
  return d.ci && (d.ci[0] > 0 || d.ci[1] < 0) ? `**${text}**` : text;
}

/** The difference to dpo-seed. */
function difference(r: Row): string {
  return r.variant === BASELINE ? '(baseline)' : pairedText(r.vs_dpo_seed);
}

/** The difference to the plan's tuned baseline (over the seeds both have). */
function tunedDifference(r: Row, tuned: string): string {
  return r.variant === tuned ? '(tuned baseline)' : pairedText(r.vs_tuned_baseline);
}

function minimum(r: Row): string {
  const where = `${f3(r.min_win_rate.value)} (s${r.min_win_rate.seed} r${r.min_win_rate.round})`;
  return r.rounds_below_init > 0 ? `${where} ⚠ ${r.rounds_below_init} below π_init` : `${where}, none below π_init`;
}

function byRound(values: Array<number | null>): string {
  const parts = values.flatMap((v, round) => (v === null ? [] : [`r${round} ${f3(v)}`]));
  return parts.length > 0 ? parts.join(' → ') : DASH;
}

function name(r: Row): string {
  return r.recommended ? `${r.variant} ★` : r.variant;
}

function escape(cell: string): string {
  return cell.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map(escape).join(' | ')} |`;
  return [line(header), `| ${header.map((_, i) => (i === 0 ? ':---' : '---:')).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/** Rows grouped by a key, in first-seen order. */
function groupBy<T>(items: T[], key: (item: T) => string): Array<[string, T[]]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(item);
  }
  return [...groups.entries()];
}

function plotLinks(plots: ReadonlyMap<string, string[]>, key: string): string[] {
  return (plots.get(key) ?? []).map((file) => `![${file.replace(/^.*\//, '').replace(/\.png$/, '').replace(/_/g, ' ')}](${encodeURI(file)})`);
}

function headline(r: Row, withNoise: boolean): string {
  return `### ${r.world}, ${r.budget} prompts${withNoise || r.noise > 0 ? `, ${pct(r.noise)} flipped seed labels` : ''}`;
}

function resultsTables(section: SectionSummary, plots: ReadonlyMap<string, string[]>): string[] {
  const out: string[] = [];
  for (const [, rows] of groupBy(section.rows, (r) => tableKey(section.name, r.world, r.budget, r.noise))) {
    const tuned = section.tunedBaseline?.[rows[0].world];
    const header = ['configuration', 'seeds', 'final win rate [95% CI over seeds]', `Δ vs ${BASELINE} [paired 95% CI]`, ...(tuned ? [`Δ vs ${tuned} [paired 95% CI, shared seeds]`] : []), 'min over rounds and seeds', 'self-label acc by round', 'KL', 'mean length'];
    out.push(headline(rows[0], false), '');
    out.push(
      table(
        header,
        rows.map((r) => [name(r), String(r.seeds.length), estimate(r.win_rate), difference(r), ...(tuned ? [tunedDifference(r, tuned)] : []), minimum(r), byRound(r.self_label_accuracy), f3(r.kl), r.mean_length.toFixed(1)]),
      ),
      '',
    );
    out.push(...plotLinks(plots, tableKey(section.name, rows[0].world, rows[0].budget, rows[0].noise)).flatMap((l) => [l, '']));
  }
  return out;
}

function leaningsText(l: Record<string, number>): string {
  const names = Object.keys(l).sort();
  return names.length === 0 ? DASH : names.map((n) => `${n} ${l[n].toFixed(2)}`).join(', ');
}

function judgesTables(section: SectionSummary, plots: ReadonlyMap<string, string[]>): string[] {
  const out: string[] = [];
  for (const [, rows] of groupBy(section.rows, (r) => tableKey(section.name, r.world, r.budget, r.noise))) {
    out.push(headline(rows[0], false), '');
    const lines = rows.flatMap((r) =>
      r.self_label_accuracy.flatMap((acc, round) => (round === 0 ? [] : [[name(r), String(round), acc === null ? DASH : f3(acc), leaningsText(r.leanings[round] ?? {})]])),
    );
    out.push(lines.length > 0 ? table(['configuration', 'round', 'self-label acc', 'judge leanings: P(chosen has more | differ)'], lines) : '_no self-annotation rounds in these cells_', '');
    out.push(...plotLinks(plots, tableKey(section.name, rows[0].world, rows[0].budget, rows[0].noise)).flatMap((l) => [l, '']));
  }
  return out;
}

function seedSizeTables(section: SectionSummary, plots: ReadonlyMap<string, string[]>): string[] {
  const out: string[] = [];
  for (const [, rows] of groupBy(section.rows, (r) => `${r.world}\u0000${r.noise}`)) {
    out.push(`### ${rows[0].world}${rows[0].noise > 0 ? `, ${pct(rows[0].noise)} flipped seed labels` : ''}`, '');
    const sorted = [...rows].sort((a, b) => a.variant.localeCompare(b.variant) || a.budget - b.budget);
    out.push(
      table(
        ['configuration', 'prompt budget', 'seed pairs', 'self-label acc by round', 'final win rate [95% CI over seeds]', `Δ vs ${BASELINE} [paired 95% CI]`],
        sorted.map((r) => [name(r), String(r.budget), r.seed_pairs.toFixed(1), byRound(r.self_label_accuracy), estimate(r.win_rate), difference(r)]),
      ),
      '',
    );
    for (const budget of [...new Set(rows.map((r) => r.budget))]) out.push(...plotLinks(plots, tableKey(section.name, rows[0].world, budget, rows[0].noise)).flatMap((l) => [l, '']));
  }
  return out;
}

function noiseTables(section: SectionSummary, plots: ReadonlyMap<string, string[]>): string[] {
  const out: string[] = [];
  for (const [, rows] of groupBy(section.rows, (r) => `${r.world}\u0000${r.budget}`)) {
    const rates = [...new Set(rows.map((r) => r.noise))].sort((a, b) => a - b);
    const find = (variant: string, noise: number) => rows.find((r) => r.variant === variant && r.noise === noise);
    out.push(`### ${rows[0].world}, ${rows[0].budget} prompts`, '');
    // The tuned baseline gets its own "loss kept" column only where the section measured it under noise.
    const tuned = section.tunedBaseline?.[rows[0].world];
    const baselines = [BASELINE, ...(tuned && rows.some((r) => r.variant === tuned && r.noise > 0) ? [tuned] : [])];
    const header = ['configuration', ...rates.flatMap((rate) => (rate === 0 ? [`win rate, ${pct(rate)}`] : [`win rate, ${pct(rate)}`, ...baselines.map((b) => `${b}'s loss kept, ${pct(rate)}`)]))];
    const lines = [...new Set(rows.map((r) => r.variant))].map((variant) => {
      const cells = rates.flatMap((rate) => {
        const r = find(variant, rate);
        const wr = r ? estimate(r.win_rate) : DASH;
        if (rate === 0) return [wr];
        const clean = find(variant, 0);
        const keptTexts = baselines.map((b) => {
          const bClean = find(b, 0);
          const bNoisy = find(b, rate);
          if (variant === b) return '(baseline)';
          if (variant === BASELINE) return DASH;
          const kept = r && clean && bClean && bNoisy
            ? lossKept({ clean: clean.win_rate.mean, noisy: r.win_rate.mean }, { clean: bClean.win_rate.mean, noisy: bNoisy.win_rate.mean })
            : undefined;
          return kept === undefined ? DASH : f3(kept);
        });
        return [wr, ...keptTexts];
      });
      const row = rows.find((r) => r.variant === variant)!;
      return [name(row), ...cells];
    });
    out.push(table(header, lines), '');
    out.push(...judgeRequirementTable(rows));
    for (const rate of rates) out.push(...plotLinks(plots, tableKey(section.name, rows[0].world, rows[0].budget, rate)).flatMap((l) => [l, '']));
  }
  out.push(
    `"${BASELINE}'s loss kept" = 1 − (WR(0) − WR(r)) / (WR_${BASELINE}(0) − WR_${BASELINE}(r)), WR the final round's win rate (mean over seeds) ` +
      `at noise rate r: 1 = lost nothing, ≥ 0.5 = issue 11's bar (loses at most half of what ${BASELINE} loses), ${DASH} where ${BASELINE} lost nothing ` +
      '(tools/campaign/README.md).',
    '',
  );
  return out;
}

/** What the noise bar asks of the round-1 judge, by the world's fitted line (judge-requirement.ts); nothing without a fit. */
function judgeRequirementTable(rows: Row[]): string[] {
  const fit = fitFinalOnAccuracy(rows);
  const needs = fit ? judgeRequirements(rows, fit) : [];
  if (!fit || needs.length === 0) return [];
  const byName = new Map(rows.map((r) => [r.variant, name(r)]));
  return [
    `What the bar asks of the judge: over these ${fit.points} rows, final win rate ≈ ${f3(fit.intercept)} + ${f3(fit.slope)} × round-1 ` +
      `self-label accuracy (r² = ${fit.r2.toFixed(2)}). The bar lets a configuration's final win rate fall by half of ${BASELINE}'s loss; by ` +
      "the slope, that is how much round-1 accuracy its judge may lose against its clean run (tools/campaign/judge-requirement.ts).",
    '',
    table(
      ['configuration', 'noise', 'win rate the bar needs', 'round-1 accuracy it may lose', 'round-1 accuracy it lost'],
      needs.map((n) => [byName.get(n.variant) ?? n.variant, pct(n.noise), f3(n.requiredWinRate), f3(n.allowedAccuracyLoss), f3(n.accuracyLoss)]),
    ),
    '',
  ];
}

const RENDERERS: Record<SectionName, (s: SectionSummary, plots: ReadonlyMap<string, string[]>) => string[]> = {
  main: resultsTables,
  judges: judgesTables,
  seed_size: seedSizeTables,
  ablation: resultsTables,
  noise: noiseTables,
};

export function renderBook(input: BookInput): string {
  const out: string[] = [];
  out.push(`# Results book: campaign \`${input.plan}\``, '');
  out.push(
    `Written ${input.createdAt.slice(0, 16).replace('T', ' ')} UTC by \`npm run campaign -- --plan ${input.planFile}\` from ` +
      `${input.finishedCells} of ${input.totalCells} cells${input.finishedCells < input.totalCells ? ' (the others have not finished: rerun the command to resume)' : ''}. ` +
      'Raw figures: [results.json](results.json).',
    '',
  );
  out.push(
    "Every figure is measured on the world's held-out evaluation prompts against π_init (the SFT model), judged by the world's gold annotator. " +
      'Win rates are the final round\'s; intervals are 95% Student-t intervals over run seeds (not over prompts). ' +
      `Δ vs ${BASELINE} is paired by seed (the cells of one seed share the base model and the seed pairs) and is bold when its interval excludes zero. ` +
      '★ marks the recommended configuration. KL: KL(π‖π_init), nats per response; lengths in characters.',
    '',
  );
  const tuned = input.sections.find((s) => s.tunedBaseline)?.tunedBaseline;
  if (tuned) {
    const which = Object.entries(tuned).map(([world, variant]) => `${variant} on ${world}`).join(', ');
    out.push(
      `Tuned baseline (dpo-seed at its best screened setting, per world: ${which}): "Δ vs" it is the same difference, paired ` +
        `over the seeds both have, and its "loss kept" column in Noise is the bar's fraction against it.`,
      '',
    );
  }
  if (input.findings?.trim()) out.push(input.findings.trim(), '');
  for (const section of input.sections) {
    out.push(`## ${SECTION_TITLES[section.name]}`, '');
    if (section.rows.length === 0) out.push(NOT_MEASURED, '');
    else out.push(...RENDERERS[section.name](section, input.plots));
  }
  return `${out.join('\n').trimEnd()}\n`;
}
