import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePortBlock } from '@alignment/service-kit/testing';
import { ROOT } from '../demo/stack';

/**
 * `npm run campaign` end to end on experiments/ci.yaml (one world, two configurations, two seeds, a 300-prompt
 * budget) through the real five services: the book's files and fields exist; a second invocation skips every cell and
 * starts no run. The world's base model is the demo's default one, cached outside the clone
 * (~/.cache/alignment/worlds), so only the first run on a machine trains it.
 */
const WORLD_CACHE = process.env.ALIGNMENT_WORLD_CACHE ?? path.join(os.homedir(), '.cache/alignment/worlds');
const TIMEOUT_MS = 25 * 60_000;
const PLAN = 'experiments/ci.yaml';

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function campaign(args: string[]): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['tools/campaign/campaign.ts', ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
}

const lastLine = (text: string) => text.trim().split('\n').pop();

describe('npm run campaign on the CI plan', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'campaign-e2e-'));
  const dataDir = path.join(tmp, 'data');
  const bookDir = path.join(tmp, 'book');
  const args = ['--plan', PLAN, '--data-dir', dataDir, '--book', bookDir, '--world-cache', WORLD_CACHE];
  let first: Outcome;
  let results: {
    cells: { total: number; finished: number; pending: string[] };
    sections: Record<string, Array<Record<string, unknown>>>;
    cell_results: Array<{ id: string; result: { rounds: Array<Record<string, unknown>> } }>;
  };

  beforeAll(async () => {
    args.push('--port-base', String(await freePortBlock(5)));
    first = await campaign(args);
    if (first.code !== 0) throw new Error(`the campaign exited ${first.code}:\n${first.stderr.slice(-4000)}`);
    results = JSON.parse(fs.readFileSync(path.join(bookDir, 'results.json'), 'utf8')) as typeof results;
    console.log(`the CI campaign took ${first.seconds.toFixed(0)} s`);
  }, TIMEOUT_MS);

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('prints the book path last, and reports progress with an ETA on stderr', () => {
    expect(lastLine(first.stdout)).toBe(path.join(bookDir, 'RESULTS.md'));
    expect(first.stderr).toContain("campaign 'ci': 4 cells, 0 already finished, 4 to run");
    expect(first.stderr).toMatch(/cells 1\/4 done; ETA \d+(m\d\ds|s) \(/);
    expect(first.stderr).toContain('cells 4/4 done');
  });

  it('writes RESULTS.md with the five sections, results.json and the plots', () => {
    const book = fs.readFileSync(path.join(bookDir, 'RESULTS.md'), 'utf8');
    expect(book.split('\n').filter((l) => l.startsWith('## '))).toEqual(['## Main', '## Judges', '## Seed size', '## Ablation', '## Noise']);
    expect(book).toContain('### arithmetic, 300 prompts');
    expect(book).toMatch(/\| dpo-seed \| 2 \| \d\.\d{3} \[/);
    expect(book).toMatch(/\| spa ★ \| 2 \| \d\.\d{3} \[.*\] \| [-+]\d\.\d{3} \[/);
    expect(book.match(/not measured in this campaign/g)).toHaveLength(4);
    for (const png of ['win_rate_by_round.png', 'reward_vs_kl.png']) {
      expect(fs.statSync(path.join(bookDir, 'plots/main-arithmetic-300-n0', png)).size).toBeGreaterThan(0);
      expect(book).toContain(`(plots/main-arithmetic-300-n0/${png})`);
    }
  });

  it("records every cell and the sections' rows in results.json, with the recommended flag", () => {
    expect(results.cells).toEqual({ total: 4, finished: 4, pending: [] });
    expect(results.cell_results).toHaveLength(4);
    for (const cell of results.cell_results) {
      expect(fs.existsSync(path.join(dataDir, 'cells', `${cell.id}.json`))).toBe(true);
      for (const round of cell.result.rounds) {
        for (const field of ['win_rate', 'win_rate_ci', 'gold_reward', 'kl', 'mean_length', 'self_label_accuracy', 'leanings']) expect(round).toHaveProperty(field);
      }
    }
    const rows = results.sections.main;
    expect(rows.map((r) => [r.variant, r.recommended])).toEqual([['dpo-seed', false], ['spa', true]]);
    for (const row of rows) {
      for (const field of ['win_rate', 'vs_dpo_seed', 'min_win_rate', 'rounds_below_init', 'self_label_accuracy', 'leanings', 'kl', 'mean_length']) expect(row).toHaveProperty(field);
      expect(row.seeds).toEqual([1, 2]);
      expect((row.win_rate as { ci: number[] }).ci).toHaveLength(2);
    }
    expect((rows[1].vs_dpo_seed as { n: number }).n).toBe(2);
    expect((rows[1].self_label_accuracy as unknown[])[1]).toEqual(expect.any(Number));
    for (const section of ['judges', 'seed_size', 'ablation', 'noise']) expect(results.sections[section]).toEqual([]);
  });

  it('skips every finished cell when run again, and writes the same book', async () => {
    const again = await campaign(args);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("campaign 'ci': 4 cells, 4 already finished, 0 to run");
    for (const cell of results.cell_results) expect(again.stderr).toContain(`skip ${cell.id}: already finished`);
    expect(again.stderr).not.toContain('starting the services');
    expect(lastLine(again.stdout)).toBe(path.join(bookDir, 'RESULTS.md'));
    const rerun = JSON.parse(fs.readFileSync(path.join(bookDir, 'results.json'), 'utf8')) as typeof results;
    expect(rerun.sections).toEqual(results.sections);
  }, TIMEOUT_MS);

  it('--book-only writes the book from the finished cells and runs none of the pending ones', async () => {
    const removed = results.cell_results[0].id;
    const kept = path.join(dataDir, `${removed}.json.kept`);
    fs.renameSync(path.join(dataDir, 'cells', `${removed}.json`), kept);
    try {
      const only = await campaign([...args, '--book-only']);
      expect(only.code).toBe(0);
      expect(only.stderr).toContain('--book-only: 1 cells not run');
      expect(only.stderr).not.toContain('starting the services');
      const partial = JSON.parse(fs.readFileSync(path.join(bookDir, 'results.json'), 'utf8')) as typeof results;
      expect(partial.cells).toEqual({ total: 4, finished: 3, pending: [removed] });
      expect(fs.readFileSync(path.join(bookDir, 'RESULTS.md'), 'utf8')).toContain('from 3 of 4 cells');
    } finally {
      fs.renameSync(kept, path.join(dataDir, 'cells', `${removed}.json`));
    }
  }, TIMEOUT_MS);
});
