/**
 * The demo's outputs: the text table printed at the end of `npm run demo`, and the report directory's
 * results.json, PNG plots (drawn by plots.py) and report.md.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigResult, DemoResults, RoundEvaluation } from './results';

const DASH = '—';
/** Plotting is a few seconds; a hung interpreter must not hold the demo's results hostage. */
const PLOT_TIMEOUT_MS = 120_000;
const PLOT_SCRIPT = path.join(__dirname, 'plots.py');

const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : String(v));
const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : String(v));
const ci = (c: [number, number]): string => `[${f3(c[0])}, ${f3(c[1])}]`;
const halfWidth = (c: [number, number]): number => (c[1] - c[0]) / 2;
const orDash = (v: number | null | undefined, fmt: (v: number) => string = f3): string => (v === null || v === undefined ? DASH : fmt(v));

/** A configuration's name in the tables: ★ marks the recommended one. */
const configName = (c: ConfigResult): string => (c.recommended ? `${c.config} ★` : c.config);

const SUMMARY_HEADER = ['config', 'win rate [95% CI]', 'LC win rate', 'gold reward ± CI', 'mean length', 'KL', 'self-label acc', 'seeds', 'win rate spread'];

/** The summary rows: π_init (SFT) first, then one per configuration (final round, mean over seeds). */
function summaryRows(results: DemoResults): string[][] {
  const rows: string[][] = [
    ['SFT (π_init)', `${f3(0.5)} (by definition)`, f3(0.5), f3(results.sft.gold_reward), f1(results.sft.mean_length), f3(0), DASH, DASH, DASH],
  ];
  for (const c of results.configs) {
    const seeds = c.seeds.length;
    rows.push([
      configName(c),
      `${f3(c.win_rate)} ${ci(c.win_rate_ci)}`,
      f3(c.lc_win_rate),
      `${f3(c.gold_reward)} ± ${f3(halfWidth(c.gold_reward_ci))}`,
      f1(c.mean_length),
      f3(c.kl),
      orDash(c.self_label_accuracy),
      String(seeds),
      seeds > 1 ? `±${f3(c.win_rate_spread)}` : DASH,
    ]);
  }
  return rows;
}

/**
 * A fixed-width text table of the final results: π_init (SFT) and every configuration, with win rate and its 95%
 * interval, length-controlled win rate, gold reward ± interval half-width, mean length, KL, self-label accuracy and
 * the spread of the win rate over seeds (when there is more than one).
 */
export function formatTable(results: DemoResults): string {
  const rows = [SUMMARY_HEADER, ...summaryRows(results)];
  const widths = SUMMARY_HEADER.map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  const line = (r: string[]): string =>
    r
      .map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const legend = results.configs.some((c) => c.recommended) ? ['★ recommended configuration'] : [];
  return [`world: ${results.world}`, line(SUMMARY_HEADER), rule, ...rows.slice(1).map(line), ...legend].join('\n');
}

function mdEscape(cell: string): string {
  return cell.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function mdTable(header: string[], rows: string[][], align?: Array<'l' | 'r'>): string {
  const sep = header.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : ':---'));
  const line = (r: string[]): string => `| ${r.map(mdEscape).join(' | ')} |`;
  return [line(header), `| ${sep.join(' | ')} |`, ...rows.map(line)].join('\n');
}

function formatLeanings(l: Record<string, number>): string {
  const names = Object.keys(l).sort();
  return names.length === 0 ? DASH : names.map((n) => `${n}: ${Number.isFinite(l[n]) ? l[n].toFixed(2) : String(l[n])}`).join(', ');
}

/** The rounds whose self-labels agreed with gold less often than a coin flip would. */
function worseThanChance(results: DemoResults): string[] {
  const out: string[] = [];
  for (const c of results.configs) {
    for (const s of c.seeds) {
      for (const r of s.rounds) {
        if (r.self_label_accuracy !== null && r.self_label_accuracy < 0.5) {
          out.push(
            `**WARNING: self-labels worse than chance** — ${c.config}, seed ${s.seed}, round ${r.round}: ` +
              `self-label accuracy ${f3(r.self_label_accuracy)} < 0.5 (the judge preferred the gold-worse response more often than not)`,
          );
        }
      }
    }
  }
  return out;
}

function roundRow(seed: number, r: RoundEvaluation): string[] {
  const bad = r.self_label_accuracy !== null && r.self_label_accuracy < 0.5;
  return [
    String(seed),
    String(r.round),
    f3(r.win_rate),
    ci(r.win_rate_ci),
    f3(r.lc_win_rate),
    `${f3(r.gold_reward)} ± ${f3(halfWidth(r.gold_reward_ci))}`,
    f1(r.mean_length),
    f3(r.kl),
    bad ? `**${f3(r.self_label_accuracy as number)} ⚠**` : orDash(r.self_label_accuracy),
    orDash(r.dropped_pairs, String),
    formatLeanings(r.leanings),
  ];
}

function configSection(c: ConfigResult): string {
  const header = ['seed', 'round', 'win rate', '95% CI', 'LC win rate', 'gold reward ± CI', 'mean length', 'KL', 'self-label acc', 'dropped pairs', 'leanings'];
  const rows = c.seeds.flatMap((s) => s.rounds.map((r) => roundRow(s.seed, r)));
  const runs = c.seeds.map((s) => `seed ${s.seed}: run \`${s.run_id}\`, ${f1(s.seconds)} s`).join('; ');
  const align: Array<'l' | 'r'> = header.map((_, i) => (i === header.length - 1 ? 'l' : 'r'));
  return [`### ${configName(c)}`, '', runs ? `${runs}.` : '_no seeds_', '', rows.length ? mdTable(header, rows, align) : '_no rounds evaluated_'].join('\n');
}

function formatOption(v: unknown): string {
  if (typeof v === 'string') return v;
  const json = JSON.stringify(v);
  return json === undefined ? String(v) : json;
}

function formatDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * report.md: the world, date and gold annotator, the options, the summary table, one per-round table per
 * configuration, a loud line for every round whose self-label accuracy is below 0.5, the warnings, the timings and
 * image links to the plots (by file name: report.md sits beside them).
 */
export function renderReportMarkdown(results: DemoResults, plotFiles: string[]): string {
  const out: string[] = [];
  out.push(`# Alignment demo — world \`${results.world}\`, ${formatDate(results.created_at)}`, '');
  out.push(`**Gold annotator:** ${results.gold}`, '');
  out.push('Every figure is measured on the held-out evaluation prompts against π_init (the SFT model), judged by the gold annotator.', '');

  const alerts = worseThanChance(results);
  for (const alert of alerts) out.push(alert, '');

  out.push('## Options', '');
  const optionNames = Object.keys(results.options);
  if (optionNames.length === 0) out.push('_none_');
  for (const name of optionNames) out.push(`- \`${name}\`: \`${formatOption(results.options[name]).replace(/`/g, "'")}\``);
  out.push('');

  out.push('## Results (final round, mean over seeds)', '');
  out.push(mdTable(SUMMARY_HEADER, summaryRows(results)), '');
  const recommended = results.configs.filter((c) => c.recommended).map((c) => c.config);
  out.push(
    'Win rate: gold win rate against π_init, ties half, with a 95% interval. LC: length-controlled win rate (Dubois et al. 2024), ' +
      'the predicted win rate at equal lengths. KL: KL(π‖π_init) estimated from samples, nats per response. ' +
      'Win rate spread: standard deviation over seeds.' +
      (recommended.length > 0 ? ` ★: the recommended configuration (${recommended.join(', ')}; the README says what it is).` : ''),
    '',
  );

  out.push('## Rounds', '');
  if (results.configs.length === 0) out.push('_no configurations_', '');
  for (const c of results.configs) out.push(configSection(c), '');

  out.push('## Warnings', '');
  if (results.warnings.length === 0) out.push('_none_');
  for (const w of results.warnings) out.push(`- ${w.replace(/\r?\n/g, ' ')}`);
  out.push('');

  out.push('## Timings', '');
  const phases = Object.keys(results.timings);
  if (phases.length === 0) {
    out.push('_not recorded_', '');
  } else {
    const rows = phases.map((p) => [p, f1(results.timings[p])]);
    if (!phases.includes('total')) rows.push(['total', f1(phases.reduce((sum, p) => sum + results.timings[p], 0))]);
    out.push(mdTable(['phase', 'seconds'], rows), '');
  }

  out.push('## Plots', '');
  if (plotFiles.length === 0) out.push('_no plots were drawn (see the warnings)_');
  for (const file of plotFiles) {
    const name = path.basename(file);
    const alt = name.replace(/\.[^.]+$/, '').replace(/_/g, ' ');
    out.push(`![${alt}](${encodeURI(name)})`, '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Writes `file` so that a reader never sees it half-written: a temporary file beside it, then a rename. */
function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

interface PlotOutcome {
  plots: string[];
  error?: string;
}

export function runPlots(pythonBin: string, resultsJson: string, dir: string): Promise<PlotOutcome> {
  return new Promise((resolve) => {
    execFile(
      pythonBin,
      [PLOT_SCRIPT, resultsJson, dir],
      { timeout: PLOT_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, MPLBACKEND: 'Agg' } },
      (error, stdout, stderr) => {
        const lastStderr = String(stderr).trim().split('\n').filter(Boolean).slice(-3).join(' / ');
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          const why =
            code === 'ENOENT'
              ? `interpreter not found`
              : error.killed
                ? `killed after ${PLOT_TIMEOUT_MS / 1000} s`
                : `exit status ${typeof code === 'number' ? code : (error.signal ?? code ?? '?')}`;
          resolve({ plots: [], error: `${why}${lastStderr ? `: ${lastStderr}` : ''}` });
          return;
        }
        const plots = String(stdout)
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .map((p) => path.resolve(dir, p));
        const missing = plots.filter((p) => !fs.existsSync(p));
        if (plots.length === 0 || missing.length > 0) {
          resolve({ plots: [], error: plots.length === 0 ? 'it printed no plot paths' : `it printed paths that do not exist: ${missing.join(', ')}` });
          return;
        }
        resolve({ plots });
      },
    );
  });
}

/**
 * Writes the report directory: results.json (pretty JSON, atomically), the PNG plots (`pythonBin
 * tools/demo/plots.py <dir>/results.json <dir>`, which needs matplotlib) and report.md linking them.
 *
 * Plotting is best-effort: when the script cannot be run or fails, results.json and report.md are still written,
 * plots is [], and a warning naming the failure is appended to `results.warnings` (the caller's object, so a
 * caller that prints its warnings afterwards shows it too) and recorded in both files.
 */
export async function writeReport(
  dir: string,
  results: DemoResults,
  pythonBin: string,
): Promise<{ reportMd: string; resultsJson: string; plots: string[] }> {
  fs.mkdirSync(dir, { recursive: true });
  const resultsJson = path.resolve(dir, 'results.json');
  const reportMd = path.resolve(dir, 'report.md');
  const json = (): string => `${JSON.stringify(results, null, 2)}\n`;
  writeAtomic(resultsJson, json());

  const outcome = await runPlots(pythonBin, resultsJson, path.resolve(dir));
  if (outcome.error !== undefined) {
    results.warnings.push(
      `plots: \`${pythonBin} ${path.relative(process.cwd(), PLOT_SCRIPT) || PLOT_SCRIPT}\` failed (${outcome.error}); ` +
        `report.md and results.json are complete, only the PNGs are missing`,
    );
    writeAtomic(resultsJson, json());
  }
  writeAtomic(reportMd, renderReportMarkdown(results, outcome.plots));
  return { reportMd, resultsJson, plots: outcome.plots };
}
