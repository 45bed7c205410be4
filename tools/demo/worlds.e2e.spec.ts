import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePortBlock } from '@alignment/service-kit/testing';
import { WORLDS } from '@alignment/toyworld';
import { runDemo } from './demo-process';
import type { DemoResults } from './results';
import { PINNED_CPU_CAPABILITY } from './cpu-level';

/**
 * docs/benchmark.md's "is this world broken?" checks, for every world, through the real demo (`npm run demo`: the five
 * services, the trainer's SFT base model, on-policy gold pairs, coordinator runs, gold evaluation), at the CPU scale:
 *
 *   - DPO on gold labels for the whole budget (dpo-gold) clearly beats SFT: gold win rate ≥ 0.65 with its 95%
 *     interval above 0.55, and mean gold reward up with non-overlapping intervals;
 *   - DPO on the 3.3% seed set (dpo-seed) is clearly below dpo-gold (non-overlapping win-rate intervals);
 *   - π_init's two samples for a prompt differ often and tie on gold rarely (< 20%).
 *
 * Each world is checked twice: at the trainer's pinned kernel level (avx2, the same figures on every x86-64 machine
 * with AVX2) and at PyTorch's `default` level (no explicit vectors), which trains a different base model: the bars
 * must hold under both, so a verdict cannot hinge on which CPU ran it. Two seeds each; the bars apply to their mean.
 *
 * Base models are cached by content hash and kernel level outside the clone (~/.cache/alignment/worlds), so only the
 * first run on a machine trains them. Also checks the demo's interface: its last stdout line is the report directory,
 * which holds report.md, the PNG plots and results.json with the documented fields.
 */
const WORLD_CACHE = process.env.ALIGNMENT_WORLD_CACHE ?? path.join(os.homedir(), '.cache/alignment/worlds');
const TIMEOUT_MS = 25 * 60_000;
const LEVELS = [PINNED_CPU_CAPABILITY, 'default'] as const;


const CASES = [...WORLDS.keys()].flatMap((world) => LEVELS.map((level) => [world, level] as const));

describe.each(CASES)('the %s world is not broken (trainer kernels: %s)', (world, level) => {
  let results: DemoResults;
  let reportDir: string;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `demo-${world}-${level}-`));

  beforeAll(async () => {
    const run = await runDemo([
      '--world', world as string,
      '--configs', 'dpo-seed,dpo-gold',
      '--seeds', '1,2',
      '--cpu-capability', level as string,
      '--data-dir', dataDir,
      '--world-cache', WORLD_CACHE,
      '--port-base', String(await freePortBlock(5)),
    ]);
    if (run.code !== 0) throw new Error(`the demo exited ${run.code}:\n${run.stderr.slice(-4000)}`);
    const lines = run.stdout.trim().split('\n');
    reportDir = lines[lines.length - 1];
    results = JSON.parse(fs.readFileSync(path.join(reportDir, 'results.json'), 'utf8')) as DemoResults;
    // The figures behind the verdicts, in the CI log (the data directory is removed afterwards).
    const figures = results.configs.map((c) => `${c.config} ${c.win_rate.toFixed(3)} [${c.win_rate_ci.map((v) => v.toFixed(3)).join(', ')}]`);
    console.log(`${world} at ${level}: π_init gold ${results.sft.gold_reward.toFixed(3)}; ${figures.join('; ')}`);
  }, TIMEOUT_MS);

  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  const config = (name: string) => {
    const found = results.configs.find((c) => c.config === name);
    if (!found) throw new Error(`results.json has no ${name} record`);
    return found;
  };

  it('writes the report directory the demo prints last: report.md, the plots and results.json', () => {
    expect(reportDir.startsWith(dataDir)).toBe(true);
    for (const file of ['report.md', 'results.json', 'win_rate_by_round.png', 'reward_vs_kl.png']) {
      expect(fs.statSync(path.join(reportDir, file)).size).toBeGreaterThan(0);
    }
    expect((results.options.base as { cpuCapability: string }).cpuCapability).toBe(level);
    for (const record of results.configs) {
      expect(record.world).toBe(world);
      for (const field of ['win_rate', 'lc_win_rate', 'gold_reward', 'mean_length'] as const) expect(Number.isFinite(record[field])).toBe(true);
      expect(record.win_rate_ci).toHaveLength(2);
      expect(record).toHaveProperty('self_label_accuracy');
    }
  });

  it('DPO on gold labels for the whole budget clearly beats SFT', () => {
    const gold = config('dpo-gold');
    expect(gold.win_rate).toBeGreaterThanOrEqual(0.65);
    expect(gold.win_rate_ci[0]).toBeGreaterThan(0.55);
    const sft = results.configs[0].seeds[0].rounds[0];
    expect(gold.gold_reward_ci[0]).toBeGreaterThan(sft.init_gold_reward_ci[1]);
  });

  it('DPO on the 3.3% seed set is clearly below DPO on 100%', () => {
    expect(config('dpo-seed').win_rate_ci[1]).toBeLessThan(config('dpo-gold').win_rate_ci[0]);
  });

  it("π_init's two samples differ often and tie on gold rarely", () => {
    for (const stats of results.seed_pairs!) {
      expect(stats.prompts).toBeGreaterThan(0);
      expect(stats.dropped / stats.prompts).toBeLessThan(0.2);
    }
  });
});
