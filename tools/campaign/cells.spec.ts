import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RoundEvaluation } from '../demo/results';
import { CellStore, expandCells, groupKey, partition, type Cell, type CellResult } from './cells';
import { CampaignEta, formatDuration } from './eta';
import { parsePlan } from './plan';
import { runIdOf } from './runner';

const PLAN = `
variants:
  - {name: wdro-rho0.05, config: wdro, overrides: {loss: {wdro: {rho: 0.05}}}}
sections:
  main: {worlds: [arithmetic, listing], configs: [dpo-seed, wdro], budgets: [300], seeds: [1, 2]}
  noise: {worlds: [arithmetic], configs: [dpo-seed, wdro-rho0.05], budgets: [300], seeds: [1, 2], noise: [0, 0.2]}
`;

function round(r: number): RoundEvaluation {
  return {
    round: r, win_rate: 0.5, win_rate_ci: [0.4, 0.6], lc_win_rate: 0.5, gold_reward: 0, gold_reward_ci: [0, 0], init_gold_reward: 0,
    init_gold_reward_ci: [0, 0], mean_length: 10, init_mean_length: 10, kl: 0, self_label_accuracy: null, dropped_pairs: null, leanings: {},
  };
}

function resultOf(cell: Cell): CellResult {
  return {
    id: cell.id, world: cell.world, variant: cell.variant.name, config: cell.variant.config, overrides: cell.variant.overrides, budget: cell.budget,
    seed: cell.seed, noise: cell.noise, settings: cell.settings, cpu_capability: cell.cpuCapability, seed_pairs: { prompts: 10, pairs: 9, dropped: 1 },
    result: { seed: cell.seed, run_id: cell.id, rounds: [round(0)], seconds: 1 }, finished_at: '2026-01-01T00:00:00Z',
  };
}

describe('campaign cells', () => {
  const cells = expandCells(parsePlan(PLAN, 'test'), 'avx2');

  it('expands every section grid, running a cell shared by two sections once', () => {
    // main: 2 worlds × 2 configs × 2 seeds = 8; noise: 2 configs × 2 seeds × 2 rates = 8, of which dpo-seed at
    // noise 0 on arithmetic (2 cells) is main's.
    expect(cells).toHaveLength(14);
    const shared = cells.filter((c) => c.sections.length === 2);
    expect(shared.map((c) => c.id).sort()).toEqual(cells.filter((c) => c.world === 'arithmetic' && c.variant.name === 'dpo-seed' && c.noise === 0).map((c) => c.id).sort());
    expect(new Set(cells.map((c) => c.id)).size).toBe(cells.length);
  });

  it('names a cell by its fields and a hash of everything its result depends on', () => {
    const cell = cells.find((c) => c.variant.name === 'wdro-rho0.05' && c.seed === 2 && c.noise === 0.2)!;
    expect(cell.id).toMatch(/^arithmetic-300-wdro-rho0\.05-s2-n0\.2-[0-9a-f]{8}$/);
    // The same plan gives the same ids; another kernel level, learning rate or override gives other ones.
    expect(expandCells(parsePlan(PLAN, 'test'), 'avx2').map((c) => c.id)).toEqual(cells.map((c) => c.id));
    expect(expandCells(parsePlan(PLAN, 'test'), 'default').map((c) => c.id)).not.toContain(cell.id);
    expect(expandCells(parsePlan(`settings: {lr: 2.0e-5}\n${PLAN}`, 'test'), 'avx2').map((c) => c.id)).not.toContain(cell.id);
    expect(expandCells(parsePlan(PLAN.replace('rho: 0.05', 'rho: 0.06'), 'test'), 'avx2').map((c) => c.id)).not.toContain(cell.id);
  });

  it("orders cells so that those sharing a base model and seed pairs run together", () => {
    const keys = cells.map((c) => `${groupKey(c)}/${c.seed}`);
    const runs = keys.filter((k, i) => i === 0 || k !== keys[i - 1]);
    expect(new Set(runs).size).toBe(runs.length);
  });

  it('gives the coordinator a stable run id of at most 64 characters', () => {
    for (const cell of cells) expect(runIdOf(cell)).toBe(cell.id);
    const long = { ...cells[0], id: `${'x'.repeat(70)}` };
    expect(runIdOf(long)).toMatch(/^cell-[0-9a-f]{32}$/);
    expect(runIdOf(long)).toBe(runIdOf({ ...long }));
  });

  it('skips the cells whose result is stored, and only those', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'campaign-cells-'));
    try {
      const store = new CellStore(dir);
      expect(partition(cells, store).pending).toHaveLength(cells.length);
      await store.write(resultOf(cells[0]));
      await store.write(resultOf(cells[3]));
      // An interrupted write leaves at most a temporary file; a truncated or foreign file is not a finished cell.
      fs.writeFileSync(store.file(cells[4].id), '{"id": "arith');
      fs.writeFileSync(store.file(cells[5].id), JSON.stringify({ ...resultOf(cells[5]), id: 'another' }));
      const { finished, pending } = partition(cells, store);
      expect([...finished.keys()]).toEqual([cells[0].id, cells[3].id]);
      expect(pending.map((c) => c.id)).toEqual(cells.filter((_, i) => i !== 0 && i !== 3).map((c) => c.id));
      expect(finished.get(cells[3].id)).toEqual(resultOf(cells[3]));
      expect(fs.readdirSync(store.dir).sort()).toEqual([cells[0].id, cells[3].id, cells[4].id, cells[5].id].map((id) => `${id}.json`).sort());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('campaign progress', () => {
  it('counts skipped cells as done and estimates the rest from the cells measured', () => {
    let now = 0;
    const eta = new CampaignEta(10, 4, () => now);
    expect(eta.line()).toBe('cells 4/10 done (4 skipped, already finished); ETA after the first cell');
    eta.start();
    now = 90_000;
    eta.cellDone();
    expect(eta.remainingSeconds()).toBe(5 * 90);
    expect(eta.line()).toBe('cells 5/10 done (4 skipped, already finished); ETA 7m30s (1m30s per cell)');
    now = 120_000;
    eta.cellDone();
    expect(eta.line()).toBe('cells 6/10 done (4 skipped, already finished); ETA 4m00s (1m00s per cell)');
  });

  it('formats durations', () => {
    expect([formatDuration(5), formatDuration(65), formatDuration(3 * 3600 + 125)]).toEqual(['5s', '1m05s', '3h02m']);
  });
});
