/**
 * A plan's cells (world × configuration variant × prompt budget × seed × label-noise rate), their ids, and the
 * store of finished cells: `<data dir>/cells/<cell id>.json`, written atomically when a cell finishes, so a rerun
 * skips what is there and an interrupted campaign resumes.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@alignment/artifacts';
import type { SeedResult } from '../demo/results';
import { SECTIONS, type Plan, type RunSettings, type Section, type SectionName, type Variant } from './plan';

export interface Cell {
  /** `<world>-<budget>-<variant>-s<seed>-n<noise>-<hash>`: the hash covers everything the cell's result depends on. */
  id: string;
  /** The sections whose grids contain the cell (a cell shared by two sections runs once). */
  sections: SectionName[];
  world: string;
  variant: Variant;
  budget: number;
  seed: number;
  noise: number;
  settings: RunSettings;
  /** The trainer's kernel level (tools/demo/cpu-level.ts): another level trains other models. */
  cpuCapability: string;
}

/** What `<data dir>/cells/<id>.json` holds. */
export interface CellResult {
  id: string;
  world: string;
  variant: string;
  config: string;
  overrides: Record<string, unknown>;
  budget: number;
  seed: number;
  noise: number;
  settings: RunSettings;
  cpu_capability: string;
  /** The gold-labelled seed pairs the cell trained on (before label noise). */
  seed_pairs: { prompts: number; pairs: number; dropped: number };
  /** The demo's per-seed result: one RoundEvaluation per evaluated round. */
  result: SeedResult;
  finished_at: string;
}

function noiseLabel(noise: number): string {
  return `n${Number(noise.toFixed(4))}`;
}

/** A cell's id: readable fields, then a hash of every input of its result. */
export function cellId(c: Omit<Cell, 'id' | 'sections'>): string {
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        world: c.world,
        config: c.variant.config,
        overrides: c.variant.overrides,
        budget: c.budget,
        seed: c.seed,
        noise: c.noise,
        settings: { rounds: c.settings.rounds, eval_prompts: c.settings.eval_prompts, scale: c.settings.scale, lr: c.settings.lr ?? null, beta: c.settings.beta ?? null },
        cpu: c.cpuCapability,
      }),
    )
    .digest('hex')
    .slice(0, 8);
  return `${c.world}-${c.budget}-${c.variant.name}-s${c.seed}-${noiseLabel(c.noise)}-${hash}`;
}

/**
 * Every cell of the plan, once: sections that share a cell (same id) share its run. Ordered so that cells of one
 * world, budget, evaluation set and seed follow one another (they share the base model and the seed pairs).
 */
export function expandCells(plan: Plan, cpuCapability: string): Cell[] {
  const cells = new Map<string, Cell>();
  for (const name of SECTIONS) {
    const top = plan.sections[name];
    if (!top) continue;
    for (const fields of [top, ...top.also].flatMap((block) => blockFields(block, cpuCapability))) {
      const id = cellId(fields);
      const existing = cells.get(id);
      if (!existing) cells.set(id, { id, sections: [name], ...fields });
      else if (!existing.sections.includes(name)) existing.sections.push(name);
    }
  }
  return [...cells.values()].sort((a, b) => groupKey(a).localeCompare(groupKey(b)) || a.seed - b.seed);
}

/** One section block's cells (world × budget × seed × noise × variant), before de-duplication. */
function blockFields(block: Omit<Section, 'also'>, cpuCapability: string): Omit<Cell, 'id' | 'sections'>[] {
  return block.worlds.flatMap((world) =>
    block.budgets.flatMap((budget) =>
      block.seeds.flatMap((seed) =>
        block.noise.flatMap((noise) => block.variants.map((variant) => ({ world, variant, budget, seed, noise, settings: block.settings, cpuCapability }))),
      ),
    ),
  );
}

/** Cells with the same group key share a base model, prompt sets (and so evaluation prompts). */
export function groupKey(c: Pick<Cell, 'world' | 'budget' | 'settings'>): string {
  return `${c.world}-${c.budget}-e${c.settings.eval_prompts}-${c.settings.scale}`;
}

export class CellStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'cells');
  }

  file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  /** The finished cell's result, or undefined when the cell has not finished (no file, or an unreadable one). */
  read(id: string): CellResult | undefined {
    try {
      const parsed = JSON.parse(fs.readFileSync(this.file(id), 'utf8')) as CellResult;
      return parsed.id === id && parsed.result && Array.isArray(parsed.result.rounds) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  async write(result: CellResult): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    await writeFileAtomic(this.file(result.id), `${JSON.stringify(result, null, 2)}\n`);
  }
}

/** Splits cells into those finished (their stored results) and those still to run. */
export function partition(cells: Cell[], store: CellStore): { finished: Map<string, CellResult>; pending: Cell[] } {
  const finished = new Map<string, CellResult>();
  const pending: Cell[] = [];
  for (const cell of cells) {
    const stored = store.read(cell.id);
    if (stored) finished.set(cell.id, stored);
    else pending.push(cell);
  }
  return { finished, pending };
}
