import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatTable, renderReportMarkdown, writeReport } from './report';
import type { ConfigResult, DemoResults, RoundEvaluation } from './results';

function round(r: number, win: number, accuracy: number | null, extra: Partial<RoundEvaluation> = {}): RoundEvaluation {
  return {
    round: r,
    win_rate: win,
    win_rate_ci: [win - 0.07, win + 0.07],
    lc_win_rate: win - 0.02,
    gold_reward: 0.3 + r / 10,
    gold_reward_ci: [0.25 + r / 10, 0.35 + r / 10],
    init_gold_reward: 0.21,
    init_gold_reward_ci: [0.21, 0.21],
    mean_length: 120 + r * 10,
    init_mean_length: 115.44,
    kl: 1.5 * r,
    self_label_accuracy: accuracy,
    dropped_pairs: r === 0 ? null : 3,
    leanings: r === 0 ? {} : { length: 0.62, sentiment: 0.714 },
    ...extra,
  };
}

function results(): DemoResults {
  const spa: ConfigResult = {
    config: 'spa',
    world: 'sentiment',
    recommended: true,
    win_rate: 0.6875,
    win_rate_ci: [0.6123, 0.7581],
    lc_win_rate: 0.6542,
    gold_reward: 0.4321,
    gold_reward_ci: [0.4021, 0.4621],
    mean_length: 140.25,
    kl: 3.9012,
    self_label_accuracy: 0.7123,
    win_rate_spread: 0.0234,
    seeds: [1, 2, 3].map((seed) => ({
      seed,
      run_id: `spa-s${seed}`,
      seconds: 100 + seed,
      rounds: [round(0, 0.55, null), round(1, 0.63, 0.71), round(2, 0.68, 0.66)],
    })),
  };
  const dpo: ConfigResult = {
    config: 'dpo-iter',
    world: 'sentiment',
    recommended: false,
    win_rate: 0.4712,
    win_rate_ci: [0.4011, 0.5413],
    lc_win_rate: 0.4899,
    gold_reward: 0.2444,
    gold_reward_ci: [0.2111, 0.2777],
    mean_length: 190.04,
    kl: 5.2,
    self_label_accuracy: null,
    win_rate_spread: 0,
    seeds: [{ seed: 1, run_id: 'dpo-s1', seconds: 90, rounds: [round(0, 0.56, null), round(1, 0.52, 0.45), round(2, 0.47, 0.4)] }],
  };
  return {
    world: 'sentiment',
    gold: 'VADER compound sentiment of the response',
    created_at: '2026-03-01T12:34:56.000Z',
    options: { configs: ['spa', 'dpo-iter'], rounds: 2, seeds: [1, 2, 3], scale: 'tiny' },
    sft: { gold_reward: 0.2109, mean_length: 115.44 },
    configs: [spa, dpo],
    timings: { stack: 12.34, runs: 300.1 },
    warnings: ['judge dropped many ties in round 2'],
  };
}

describe('formatTable', () => {
  const table = formatTable(results());
  const lines = table.split('\n');

  it('has a header, the SFT row and one row per configuration, with the numbers', () => {
    expect(lines[1]).toMatch(/^config\s+win rate \[95% CI\]\s+LC win rate\s+gold reward ± CI\s+mean length\s+KL\s+self-label acc/);
    const sft = lines.find((l) => l.startsWith('SFT (π_init)')) as string;
    expect(sft).toContain('0.500');
    expect(sft).toContain('0.211');
    expect(sft).toContain('115.4');
    // spa is marked recommended in this fixture: ★ after its name, and a legend under the table.
    const spa = lines.find((l) => l.startsWith('spa ★ ')) as string;
    for (const figure of ['0.688 [0.612, 0.758]', '0.654', '0.432 ± 0.030', '140.3', '3.901', '0.712', '±0.023']) expect(spa).toContain(figure);
    const dpo = lines.find((l) => l.startsWith('dpo-iter')) as string;
    for (const figure of ['0.471 [0.401, 0.541]', '0.490', '0.244 ± 0.033', '190.0', '5.200', '—']) expect(dpo).toContain(figure);
    expect(dpo).not.toContain('±0.000'); // one seed: no spread
    expect(dpo).not.toContain('★');
    expect(lines[lines.length - 1]).toBe('★ recommended configuration');
  });

  it('is fixed-width: every column starts at the same offset on every row', () => {
    const header = lines[1];
    const klEnd = header.indexOf('KL') + 2;
    for (const row of lines.slice(3, -1)) expect(row.slice(klEnd - 5, klEnd)).toMatch(/^\d\.\d{3}$/);
  });
});

describe('renderReportMarkdown', () => {
  it('has the title, gold annotator, options, tables, warnings, timings and plot links', () => {
    const md = renderReportMarkdown(results(), ['/some/dir/win_rate_by_round.png', '/some/dir/reward_vs_kl.png']);
    expect(md).toMatch(/^# .*`sentiment`.*2026-03-01 12:34 UTC/);
    expect(md).toContain('VADER compound sentiment of the response');
    expect(md).toContain('- `rounds`: `2`');
    expect(md).toContain('- `configs`: `["spa","dpo-iter"]`');
    expect(md).toMatch(/\| spa ★ \| 0\.688 \[0\.612, 0\.758\] \| 0\.654 \|/);
    expect(md).toContain('### spa ★');
    expect(md).toContain('★: the recommended configuration (spa; the README says what it is).');
    expect(md).toContain('### dpo-iter');
    expect(md).toContain('length: 0.62, sentiment: 0.71');
    expect(md).toContain('- judge dropped many ties in round 2');
    expect(md).toMatch(/\| total \| 312\.4 \|/);
    expect(md).toContain('![win rate by round](win_rate_by_round.png)');
    expect(md).toContain('![reward vs kl](reward_vs_kl.png)');
    expect(md).not.toContain('/some/dir');
  });

  it('says loudly when a round’s self-labels are worse than chance', () => {
    const md = renderReportMarkdown(results(), []);
    expect(md).toContain('self-labels worse than chance** — dpo-iter, seed 1, round 1: self-label accuracy 0.450 < 0.5');
    expect(md).toContain('dpo-iter, seed 1, round 2: self-label accuracy 0.400');
    expect(md).not.toMatch(/worse than chance\*\* — spa/);
    // loud: before the tables
    expect(md.indexOf('worse than chance')).toBeLessThan(md.indexOf('## Results'));
  });

  it('has no such line when every round is at least 0.5', () => {
    const r = results();
    r.configs = [r.configs[0]];
    expect(renderReportMarkdown(r, [])).not.toContain('worse than chance');
  });
});

describe('writeReport', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-report-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes results.json, runs the plot script and links its PNGs from report.md', async () => {
    // A stand-in interpreter: records its arguments and writes the two files plots.py would.
    const fakePython = path.join(dir, 'fake-python');
    fs.writeFileSync(
      fakePython,
      '#!/bin/sh\necho "$@" > "$3/args.txt"\ntouch "$3/win_rate_by_round.png" "$3/reward_vs_kl.png"\n' +
        'echo "$3/win_rate_by_round.png"\necho "$3/reward_vs_kl.png"\n',
      { mode: 0o755 },
    );
    const out = path.join(dir, 'report');
    const input = results();
    const written = await writeReport(out, input, fakePython);

    expect(JSON.parse(fs.readFileSync(written.resultsJson, 'utf8'))).toEqual(results());
    expect(written.resultsJson).toBe(path.join(out, 'results.json'));
    expect(fs.readFileSync(path.join(out, 'args.txt'), 'utf8').trim()).toBe(
      `${path.join(__dirname, 'plots.py')} ${path.join(out, 'results.json')} ${out}`,
    );
    expect(written.plots).toEqual([path.join(out, 'win_rate_by_round.png'), path.join(out, 'reward_vs_kl.png')]);
    const md = fs.readFileSync(written.reportMd, 'utf8');
    expect(md).toContain('](win_rate_by_round.png)');
    expect(md).toContain('](reward_vs_kl.png)');
    expect(input.warnings).toEqual(results().warnings);
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('still writes report.md and results.json when the interpreter does not exist', async () => {
    const input = results();
    const written = await writeReport(dir, input, '/nonexistent/python');
    expect(written.plots).toEqual([]);
    const md = fs.readFileSync(written.reportMd, 'utf8');
    expect(md).toContain('## Results');
    expect(md).toMatch(/plots: `\/nonexistent\/python .*plots\.py` failed \(interpreter not found\)/);
    const parsed = JSON.parse(fs.readFileSync(written.resultsJson, 'utf8')) as DemoResults;
    expect(parsed.configs).toEqual(results().configs);
    expect(parsed.warnings).toHaveLength(2);
    expect(parsed.warnings[1]).toContain('/nonexistent/python');
    expect(input.warnings[1]).toContain('/nonexistent/python'); // the caller sees it too
  });

  it('names the failure when the plot script exits non-zero', async () => {
    const failing = path.join(dir, 'failing-python');
    fs.writeFileSync(failing, '#!/bin/sh\necho "ModuleNotFoundError: No module named matplotlib" >&2\nexit 1\n', { mode: 0o755 });
    const written = await writeReport(path.join(dir, 'r'), results(), failing);
    expect(written.plots).toEqual([]);
    expect(fs.readFileSync(written.reportMd, 'utf8')).toContain('failed (exit status 1: ModuleNotFoundError: No module named matplotlib)');
  });
});
