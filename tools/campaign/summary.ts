/**
 * The book's figures from finished cells: one row per section × world × budget × noise rate × configuration
 * variant, over the seeds that finished (pure; unit-tested through book.spec.ts). Only finished cells count: a row
 * with no finished seed is left out, and a section without any says so, so the book never shows a number nobody measured.
 */
import type { RoundEvaluation } from '../demo/results';
import type { Cell, CellResult } from './cells';
import { SECTIONS, type SectionName } from './plan';
import { betweenSeeds, pairedDifference, type Estimate } from './stats';

/** The configuration every row's difference is taken against (issue 11's goal: beat DPO on the seed set alone). */
export const BASELINE = 'dpo-seed';

export interface Row {
  section: SectionName;
  world: string;
  budget: number;
  noise: number;
  variant: string;
  config: string;
  recommended: boolean;
  seeds: number[];
  /** Final round's gold win rate vs π_init, with its 95% between-seed t-interval. */
  win_rate: Estimate;
  /** Final win rate minus dpo-seed's (same world, budget, noise), paired by seed; null without dpo-seed cells. */
  vs_dpo_seed: Estimate | null;
  /** The same against the plan's `tuned_baseline` (its cells of any section); absent without one. */
  vs_tuned_baseline?: Estimate | null;
  /** The lowest win rate of any evaluated round of any seed, and how many (seed, round) pairs were below 0.5. */
  min_win_rate: { value: number; seed: number; round: number };
  rounds_below_init: number;
  /** Mean over seeds, per round (index = round; null where no seed has one, e.g. round 0). */
  self_label_accuracy: Array<number | null>;
  /** Mean over seeds, per round: the round judge's leanings (P(chosen has the larger feature value | differ)). */
  leanings: Array<Record<string, number>>;
  /** Per round, mean over seeds (index = round). */
  win_rate_by_round: number[];
  /** Final round, mean over seeds. */
  lc_win_rate: number;
  kl: number;
  mean_length: number;
  init_mean_length: number;
  /** Gold-labelled seed pairs, mean over seeds. */
  seed_pairs: number;
  cells: string[];
}

export interface SectionSummary {
  name: SectionName;
  rows: Row[];
  /** The plan's `tuned_baseline` per world, when it has one. */
  tunedBaseline?: Readonly<Record<string, string>>;
}

function meanOf(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function last(result: CellResult): RoundEvaluation {
  return result.result.rounds[result.result.rounds.length - 1];
}

function perRound<T>(results: CellResult[], pick: (r: RoundEvaluation) => T | null | undefined, combine: (values: T[]) => T): Array<T | null> {
  const rounds = Math.max(...results.map((r) => r.result.rounds.length));
  return Array.from({ length: rounds }, (_, i) => {
    const values = results.map((r) => r.result.rounds.find((e) => e.round === i)).flatMap((e) => (e ? [pick(e)] : [])).filter((v): v is T => v !== null && v !== undefined);
    return values.length > 0 ? combine(values) : null;
  });
}

function meanLeanings(values: Array<Record<string, number>>): Record<string, number> {
  const names = [...new Set(values.flatMap((v) => Object.keys(v)))].sort();
  return Object.fromEntries(names.map((n) => [n, meanOf(values.flatMap((v) => (typeof v[n] === 'number' ? [v[n]] : [])))]));
}

function finalsBySeed(results: CellResult[]): Map<number, number> {
  return new Map(results.map((r) => [r.seed, last(r).win_rate]));
}

function row(section: SectionName, results: CellResult[], baseline: CellResult[] | undefined, recommended: ReadonlySet<string>): Row {
  const first = results[0];
  const sorted = [...results].sort((a, b) => a.seed - b.seed);
  const finals = finalsBySeed(sorted);
  let min = { value: Infinity, seed: 0, round: 0 };
  let below = 0;
  for (const r of sorted) {
    for (const e of r.result.rounds) {
      if (e.win_rate < min.value) min = { value: e.win_rate, seed: r.seed, round: e.round };
      if (e.win_rate < 0.5) below++;
    }
  }
  const baselineFinals = baseline && finalsBySeed(baseline);
  return {
    section,
    world: first.world,
    budget: first.budget,
    noise: first.noise,
    variant: first.variant,
    config: first.config,
    recommended: recommended.has(first.variant),
    seeds: sorted.map((r) => r.seed),
    win_rate: betweenSeeds([...finals.values()]),
    vs_dpo_seed: baselineFinals && first.variant !== BASELINE ? (pairedDifference(finals, baselineFinals) ?? null) : null,
    min_win_rate: min,
    rounds_below_init: below,
    self_label_accuracy: perRound(sorted, (e) => e.self_label_accuracy, meanOf),
    leanings: perRound(sorted, (e) => (Object.keys(e.leanings).length > 0 ? e.leanings : null), meanLeanings).map((l) => l ?? {}),
    win_rate_by_round: perRound(sorted, (e) => e.win_rate, meanOf).map((v) => v ?? NaN),
    lc_win_rate: meanOf(sorted.map((r) => last(r).lc_win_rate)),
    kl: meanOf(sorted.map((r) => last(r).kl)),
    mean_length: meanOf(sorted.map((r) => last(r).mean_length)),
    init_mean_length: meanOf(sorted.map((r) => last(r).init_mean_length)),
    seed_pairs: meanOf(sorted.map((r) => r.seed_pairs.pairs)),
    cells: sorted.map((r) => r.id),
  };
}

/**
 * Every section's rows from the plan's cells and the finished ones' results. Rows keep the plan's order: world,
 * budget, noise rate, then the section's configuration order.
 */
export function summarise(
  cells: Cell[],
  finished: ReadonlyMap<string, CellResult>,
  recommended: readonly string[],
  tunedBaseline?: Readonly<Record<string, string>>,
): SectionSummary[] {
  const wanted = new Set(recommended);
  const key = (world: string, budget: number, noise: number, variant: string) => JSON.stringify([world, budget, noise, variant]);
  // The tuned baseline's cells, whichever sections hold them (each cell once).
  const tuned = new Map<string, CellResult[]>();
  for (const cell of cells) {
    const result = finished.get(cell.id);
    if (!tunedBaseline || cell.variant.name !== tunedBaseline[cell.world] || !result) continue;
    const k = key(cell.world, cell.budget, cell.noise, cell.variant.name);
    tuned.set(k, [...(tuned.get(k) ?? []), result]);
  }
  return SECTIONS.map((name) => {
    const groups = new Map<string, CellResult[]>();
    const order: string[] = [];
    for (const cell of cells) {
      if (!cell.sections.includes(name)) continue;
      const result = finished.get(cell.id);
      if (!result) continue;
      const k = key(cell.world, cell.budget, cell.noise, cell.variant.name);
      if (!groups.has(k)) {
        groups.set(k, []);
        order.push(k);
      }
      groups.get(k)!.push(result);
    }
    const rows = order.map((k) => {
      const [world, budget, noise, variant] = JSON.parse(k) as [string, number, number, string];
      const r = row(name, groups.get(k)!, groups.get(key(world, budget, noise, BASELINE)), wanted);
      if (!tunedBaseline) return r;
      const reference = tuned.get(key(world, budget, noise, tunedBaseline[world] ?? ''));
      const vsTuned = reference && variant !== tunedBaseline[world] && variant !== BASELINE ? (pairedDifference(finalsBySeed(groups.get(k)!), finalsBySeed(reference)) ?? null) : null;
      return { ...r, vs_tuned_baseline: vsTuned };
    });
    const rank = (r: Row) => `${r.world}\u0000${String(r.budget).padStart(8, '0')}\u0000${r.noise.toFixed(4)}`;
    rows.sort((a, b) => rank(a).localeCompare(rank(b)));
    return { name, rows, ...(tunedBaseline ? { tunedBaseline } : {}) };
  });
}
