/**
 * Runs a campaign's pending cells through the real five-service stack, the way `npm run demo` runs its
 * configurations (tools/demo): per world, budget and evaluation set the base model is built once or reused from the
 * world cache; per seed the on-policy gold seed pairs are labelled once and shared by every cell of that seed (and
 * kept under the data directory, so a resumed campaign trains on the same pairs); each cell is one coordinator run
 * with its variant's overrides and label-noise rate, evaluated against π_init with the world's gold annotator, and
 * stored as soon as it finishes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileAtomic } from '@alignment/artifacts';
import { getWorld } from '@alignment/toyworld';
import { parseOptions, type DemoOptions } from '../demo/options';
import type { Progress } from '../demo/progress';
import { evaluateRun, goldPairs, runSpec, runToCompletion, type GoldPairs } from '../demo/runs';
import type { StackClients } from '../demo/stack';
import { buildOrReuseBaseModel, type WorldInputs } from '../demo/world-model';
import { groupKey, type Cell, type CellStore } from './cells';
import type { CampaignEta } from './eta';
import { applyOverrides } from './overrides';

export interface RunnerContext {
  clients: StackClients;
  python: string;
  dataDir: string;
  worldCache: string;
  cpuCapability: string;
  /** The stack's first port: gold-rounds' annotator is the stack's judge (tools/demo/options.ts). */
  portBase: number;
  store: CellStore;
  progress: Progress;
  eta: CampaignEta;
}

/**
 * The demo's options for a cell: its world, scale, budget, evaluation set, rounds and (when set) lr and β, with the
 * campaign stack's ports.
 */
export function demoOptions(cell: Cell, cpuCapability: string, portBase: number): DemoOptions {
  const s = cell.settings;
  const argv = ['--world', cell.world, '--scale', s.scale, '--prompt-budget', String(cell.budget), '--eval-prompts', String(s.eval_prompts)];
  argv.push('--rounds', String(s.rounds), '--seeds', String(cell.seed), '--cpu-capability', cpuCapability, '--port-base', String(portBase));
  if (s.lr !== undefined) argv.push('--lr', String(s.lr));
  if (s.beta !== undefined) argv.push('--beta', String(s.beta));
  return parseOptions(argv) as DemoOptions;
}

/** The coordinator's run id of a cell (1-64 characters of [A-Za-z0-9._-]): stable, so StartRun resumes it. */
export function runIdOf(cell: Cell): string {
  return cell.id.length <= 64 ? cell.id : `cell-${createHash('sha256').update(cell.id).digest('hex').slice(0, 32)}`;
}

/** Gold pairs labelled once into `dir` and reused from its `.complete` record afterwards. */
async function cachedPairs(dir: string, label: () => Promise<GoldPairs>): Promise<GoldPairs> {
  const marker = path.join(dir, '.complete');
  if (fs.existsSync(marker)) return JSON.parse(fs.readFileSync(marker, 'utf8')) as GoldPairs;
  fs.rmSync(dir, { recursive: true, force: true });
  const pairs = await label();
  await writeFileAtomic(marker, JSON.stringify(pairs));
  return pairs;
}

async function runCell(ctx: RunnerContext, cell: Cell, inputs: WorldInputs, options: DemoOptions, seedPairs: GoldPairs, goldFile: string | undefined): Promise<void> {
  const { progress } = ctx;
  const world = getWorld(cell.world);
  const label = `${cell.world} ${cell.budget} ${cell.variant.name} s${cell.seed} n${cell.noise}`;
  const started = Date.now();
  const pairsFile = cell.variant.config === 'dpo-gold' ? goldFile! : seedPairs.file;
  const base = runSpec(cell.variant.config, world, inputs, pairsFile, { ...options.run, rounds: cell.settings.rounds, seed: cell.seed });
  const spec = applyOverrides({ ...base, name: `campaign cell ${cell.id}`, labelNoiseRate: cell.noise }, cell.variant.overrides);
  const run = await runToCompletion(ctx.clients, runIdOf(cell), spec, (stage, done, total) => progress.update(`${label} ${stage}`, done, total));
  progress.update(`${label} evaluating`, 0, 1);
  const rounds = await evaluateRun(ctx.clients, world, ctx.dataDir, run, inputs.model);
  progress.done();
  await ctx.store.write({
    id: cell.id,
    world: cell.world,
    variant: cell.variant.name,
    config: cell.variant.config,
    overrides: cell.variant.overrides,
    budget: cell.budget,
    seed: cell.seed,
    noise: cell.noise,
    settings: cell.settings,
    cpu_capability: cell.cpuCapability,
    seed_pairs: { prompts: seedPairs.prompts, pairs: seedPairs.pairs, dropped: seedPairs.dropped },
    result: { seed: cell.seed, run_id: run.runId, rounds, seconds: (Date.now() - started) / 1000 },
    finished_at: new Date().toISOString(),
  });
  ctx.eta.cellDone();
  const final = rounds[rounds.length - 1];
  progress.log(`${cell.id}: final win rate ${final.win_rate.toFixed(3)} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  progress.log(ctx.eta.line());
}

/**
 * Runs the pending cells (in expandCells' order, which keeps each world/budget/seed's cells together). A failed cell
 * is reported and left unfinished (a rerun retries it) while the others go on, and so is every cell of a group whose
 * world data, base model or seed pairs cannot be made (a budget larger than the world has distinct prompts for);
 * returns the failures.
 */
export async function runCells(ctx: RunnerContext, pending: Cell[]): Promise<string[]> {
  const failures: string[] = [];
  const groups = new Map<string, Cell[]>();
  for (const cell of pending) groups.set(groupKey(cell), [...(groups.get(groupKey(cell)) ?? []), cell]);
  for (const [key, cells] of groups) {
    try {
      await runGroup(ctx, key, cells, failures);
    } catch (error) {
      ctx.progress.done();
      const failure = `${key} (${cells.length} cells not run): ${(error as Error).message}`;
      failures.push(failure);
      ctx.progress.log(`FAILED ${failure}`);
    }
  }
  return failures;
}

/** One world/budget/evaluation group: its base model, then per seed its seed pairs and cells. */
async function runGroup(ctx: RunnerContext, key: string, cells: Cell[], failures: string[]): Promise<void> {
  const { progress } = ctx;
  ctx.eta.start();
  const world = getWorld(cells[0].world);
  const groupDir = path.join(ctx.dataDir, 'worlds', key);
  const base = demoOptions(cells[0], ctx.cpuCapability, ctx.portBase).base;
  const inputs = await buildOrReuseBaseModel(ctx.clients, ctx.python, world, base, ctx.worldCache, path.join(groupDir, 'prompts'), (done, total, detail) =>
    progress.update(`base model (SFT, ${world.name})`, done, total, detail),
  );
  progress.done();
  progress.log(inputs.built ? `${key}: base model built in ${inputs.sftSeconds.toFixed(0)} s: ${inputs.dir}` : `${key}: base model reused: ${inputs.dir}`);
  for (const seed of [...new Set(cells.map((c) => c.seed))]) {
    const seedCells = cells.filter((c) => c.seed === seed);
    const options = demoOptions(seedCells[0], ctx.cpuCapability, ctx.portBase);
    const generation = { seed, ...options.pairGeneration };
    const seedPairs = await cachedPairs(path.join(groupDir, `pairs-s${seed}`, 'seed'), () =>
      goldPairs(ctx.clients, world, inputs.model, [inputs.seedPrompts], path.join(groupDir, `pairs-s${seed}`, 'seed'), generation, (done, total) =>
        progress.update(`${key} seed ${seed}: seed pairs (π_init samples, gold labels)`, done, total),
      ),
    );
    progress.done();
    progress.log(`${key} seed ${seed}: ${seedPairs.pairs} gold-labelled seed pairs from ${seedPairs.prompts} prompts (${seedPairs.dropped} dropped)`);
    for (const cell of seedCells) {
      let goldFile: string | undefined;
      if (cell.variant.config === 'dpo-gold') {
        const rounds = cell.settings.rounds;
        const dir = path.join(groupDir, `pairs-s${seed}`, `gold-r${rounds}`);
        const gold = await cachedPairs(dir, () =>
          goldPairs(ctx.clients, world, inputs.model, [inputs.seedPrompts, ...inputs.roundPrompts.slice(0, rounds)], dir, generation, (done, total) =>
            progress.update(`${key} seed ${seed}: gold pairs for the whole budget`, done, total),
          ),
        );
        goldFile = gold.file;
      }
      try {
        await runCell(ctx, cell, inputs, demoOptions(cell, ctx.cpuCapability, ctx.portBase), seedPairs, goldFile);
      } catch (error) {
        progress.done();
        failures.push(`${cell.id}: ${(error as Error).message}`);
        progress.log(`FAILED ${cell.id}: ${(error as Error).message}`);
      }
    }
  }
}
