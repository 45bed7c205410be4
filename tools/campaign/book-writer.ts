/**
 * Writes the results book's directory: results.json (every cell and every section's rows, with the `recommended`
 * flag), the plots (tools/demo/plots.py through the trainer's Python, one pair per table: win rate by round and
 * gold reward vs KL) and RESULTS.md linking them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '@alignment/artifacts';
import { runPlots } from '../demo/report';
import { renderBook, tableKey } from './book';
import type { Cell, CellResult } from './cells';
import type { Plan } from './plan';
import { summarise, type Row, type SectionSummary } from './summary';

export interface BookFiles {
  resultsMd: string;
  resultsJson: string;
  plots: string[];
  /** Plots that could not be drawn (the book is complete without them). */
  warnings: string[];
}

/** plots.py's input for one table: a demo results.json with one record per configuration variant. */
function plotInput(title: string, rows: Row[], finished: ReadonlyMap<string, CellResult>): object {
  return {
    world: title,
    configs: rows.map((r) => ({ config: r.variant, seeds: r.cells.map((id) => finished.get(id)!.result) })),
  };
}

async function drawPlots(
  bookDir: string,
  sections: SectionSummary[],
  finished: ReadonlyMap<string, CellResult>,
  python: string,
): Promise<{ plots: Map<string, string[]>; warnings: string[] }> {
  const plots = new Map<string, string[]>();
  const warnings: string[] = [];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'campaign-plots-'));
  try {
    for (const section of sections) {
      const tables = new Map<string, Row[]>();
      for (const r of section.rows) {
        const key = tableKey(section.name, r.world, r.budget, r.noise);
        tables.set(key, [...(tables.get(key) ?? []), r]);
      }
      for (const [key, rows] of tables) {
        const r = rows[0];
        const title = `${r.world}, ${r.budget} prompts${r.noise > 0 ? `, noise ${r.noise}` : ''} (${section.name})`;
        const input = path.join(scratch, `${key}.json`);
        fs.writeFileSync(input, JSON.stringify(plotInput(title, rows, finished)));
        const outcome = await runPlots(python, input, path.join(bookDir, 'plots', key));
        if (outcome.error !== undefined) warnings.push(`plots of ${key}: ${outcome.error}`);
        else plots.set(key, outcome.plots.map((p) => path.relative(bookDir, p).split(path.sep).join('/')));
      }
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return { plots, warnings };
}

/** Writes results.json, plots/<table>/*.png and RESULTS.md into the book directory. */
export async function writeBook(
  bookDir: string,
  plan: Plan,
  planFile: string,
  cells: Cell[],
  finished: ReadonlyMap<string, CellResult>,
  python: string,
): Promise<BookFiles> {
  fs.mkdirSync(bookDir, { recursive: true });
  const sections = summarise(cells, finished, plan.recommended, plan.tunedBaseline);
  const createdAt = new Date().toISOString();
  const done = cells.filter((c) => finished.has(c.id));
  fs.rmSync(path.join(bookDir, 'plots'), { recursive: true, force: true });
  const { plots, warnings } = await drawPlots(bookDir, sections, finished, python);
  const resultsJson = path.join(bookDir, 'results.json');
  await writeFileAtomic(
    resultsJson,
    `${JSON.stringify(
      {
        plan: plan.name,
        plan_file: planFile,
        created_at: createdAt,
        recommended: plan.recommended,
        tuned_baseline: plan.tunedBaseline ?? null,
        cells: { total: cells.length, finished: done.length, pending: cells.filter((c) => !finished.has(c.id)).map((c) => c.id) },
        sections: Object.fromEntries(sections.map((s) => [s.name, s.rows])),
        cell_results: done.map((c) => ({ ...finished.get(c.id)!, sections: c.sections })),
        warnings,
      },
      null,
      2,
    )}\n`,
  );
  const resultsMd = path.join(bookDir, 'RESULTS.md');
  await writeFileAtomic(
    resultsMd,
    renderBook({ plan: plan.name, planFile, createdAt, totalCells: cells.length, finishedCells: done.length, sections, plots, findings: plan.findings }),
  );
  return { resultsMd, resultsJson, plots: [...plots.values()].flat().map((p) => path.join(bookDir, p)), warnings };
}
