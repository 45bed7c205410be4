import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { toLocalPath } from '@alignment/artifacts';
import { freePortBlock } from '@alignment/service-kit/testing';
import { runDemo } from './demo-process';
import type { DemoResults } from './results';
import { readJsonl } from './runs';

/**
 * The demo's recommended configuration, gold-rounds, through the real demo (`npm run demo`: the five services, the
 * cached base model, coordinator runs, gold evaluation) at a 300-prompt budget: each round the stack's judge labels
 * the policy's pairs on 2% of the budget (6 prompts) with the world's gold rule, the round trains on those pairs
 * alone, and results.json marks the row recommended. The figures are not checked here (a tiny budget decides
 * nothing): experiments/gold-demo-1k5-findings.md has them.
 */
const WORLD_CACHE = process.env.ALIGNMENT_WORLD_CACHE ?? path.join(os.homedir(), '.cache/alignment/worlds');
const TIMEOUT_MS = 25 * 60_000;


describe('npm run demo with gold-rounds', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-gold-rounds-'));
  let stdout = '';
  let results: DemoResults;

  beforeAll(async () => {
    const run = await runDemo([
      '--configs', 'dpo-seed,gold-rounds',
      '--rounds', '1',
      '--prompt-budget', '300',
      '--eval-prompts', '40',
      '--data-dir', dataDir,
      '--world-cache', WORLD_CACHE,
      '--port-base', String(await freePortBlock(5)),
    ]);
    if (run.code !== 0) throw new Error(`the demo exited ${run.code}:\n${run.stderr.slice(-4000)}`);
    stdout = run.stdout;
    const lines = run.stdout.trim().split('\n');
    results = JSON.parse(fs.readFileSync(path.join(lines[lines.length - 1], 'results.json'), 'utf8')) as DemoResults;
  }, TIMEOUT_MS);

  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('marks gold-rounds recommended in results.json and with ★ in the printed table', () => {
    expect(results.configs.map((c) => [c.config, c.recommended])).toEqual([
      ['dpo-seed', false],
      ['gold-rounds', true],
    ]);
    expect(stdout).toMatch(/^gold-rounds ★ /m);
    expect(stdout).toContain('★ recommended configuration');
  });

  it("trains round 1 on the annotator's gold pairs alone, asked of 2% of the budget", () => {
    const record = results.configs.find((c) => c.config === 'gold-rounds')!;
    const runDir = path.join(dataDir, 'runs', record.seeds[0].run_id, 'round-1', 'judge');
    const outputs = (JSON.parse(fs.readFileSync(path.join(runDir, 'stage.json'), 'utf8')) as { outputs: Record<string, { uri: string }> }).outputs;
    const file = (name: string) => toLocalPath(outputs[name].uri);
    const gold = readJsonl(file('gold_pairs'));
    const trained = readJsonl(file('pairs'));
    expect(gold.length).toBeGreaterThan(0);
    expect(gold.length).toBeLessThanOrEqual(6);
    expect(trained).toEqual(gold.map((p) => ({ ...p, source: 'gold' })));
    // The chosen response is the gold rule's preference on every trained pair.
    for (const p of gold) expect(p.chosen_score as number).toBeGreaterThan(p.rejected_score as number);
    // No self-label was trained on, so the round has no self-label accuracy.
    expect(record.seeds[0].rounds[1].self_label_accuracy).toBeNull();
  });
});
