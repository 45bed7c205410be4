// The demo's recommended configuration (tools/demo/runs.ts, gold-rounds) at the 15K budget is the configuration whose
// cells meet issue 11's bars (experiments/gold-noise-15k.yaml, the g300x4 variants): the same RunSpec, field for field,
// as the campaign built for those cells. If either drifts, the evidence the README cites no longer describes the demo.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunSpec } from '@alignment/contracts';
import { getWorld } from '@alignment/toyworld';
import { parseOptions, type DemoOptions } from '../demo/options';
import { RECOMMENDED_CONFIGURATION, runSpec } from '../demo/runs';
import { ROOT } from '../demo/stack';
import type { WorldInputs } from '../demo/world-model';
import { expandCells } from './cells';
import { applyOverrides } from './overrides';
import { parsePlan } from './plan';
import { demoOptions } from './runner';

const PLAN = path.join(ROOT, 'experiments/gold-noise-15k.yaml');
const PORT_BASE = 50251; // the campaign's default, whose judge (50253) the plan names as the annotator
const inputs = {
  model: { hfCheckpoint: { uri: '/m/hf', sha256: '', sizeBytes: 0 } },
  evalPrompts: '/p/eval.jsonl',
  roundPrompts: ['/p/r1.jsonl', '/p/r2.jsonl'],
} as unknown as WorldInputs;

/** The demo's rates at 15K: its tuned rate per world, except listing, whose 15K rate is 1e-4 (the screens'). */
const DEMO_ARGS: Record<string, string[]> = { arithmetic: [], listing: ['--lr', '1e-4'], sentiment: [] };

describe('the recommended configuration', () => {
  const plan = parsePlan(fs.readFileSync(PLAN, 'utf8'), 'gold-noise-15k');
  const cells = expandCells(plan, 'avx2');

  it.each(Object.entries({ arithmetic: 'g300x4-arith-1e-4', listing: 'g300x4-listing-1e-4', sentiment: 'g300x4-senti-3e-4r1e-4' }))(
    'on %s at 15K is the RunSpec of the screen\'s %s cells',
    (world, variant) => {
      expect(RECOMMENDED_CONFIGURATION).toBe('gold-rounds');
      const cell = cells.find((c) => c.world === world && c.variant.name === variant && c.seed === 1 && c.noise === 0)!;
      expect(cell).toBeDefined();
      const options = demoOptions(cell, 'avx2', PORT_BASE);
      const settings = { ...options.run, rounds: cell.settings.rounds, seed: 1 };
      const screened = applyOverrides(runSpec(cell.variant.config, getWorld(world), inputs, '/p/seed.jsonl', settings), cell.variant.overrides);

      const demo = parseOptions(['--world', world, '--prompt-budget', '15000', '--port-base', String(PORT_BASE), ...DEMO_ARGS[world]]) as DemoOptions;
      const recommended = runSpec(RECOMMENDED_CONFIGURATION, getWorld(world), inputs, '/p/seed.jsonl', { ...demo.run, rounds: 2, seed: 1 });
      const json = (spec: RunSpec) => ({ ...(RunSpec.toJSON(spec) as Record<string, unknown>), name: undefined });
      expect(json(recommended)).toEqual(json(screened));
      expect(recommended.roundGoldLabels?.pairsPerRound).toBe(300);
    },
  );
});
