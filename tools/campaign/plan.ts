/**
 * A campaign plan (tools/campaign/README.md): a YAML file that describes a sweep of worlds × configuration variants ×
 * prompt budgets × seeds × label-noise rates, grouped into the results book's sections. parsePlan validates it and
 * names the offending field in every error (`sections.main.worlds[2]: unknown world 'x' (known: ...)`).
 */
import { parse as parseYaml } from 'yaml';
import { WORLDS } from '@alignment/toyworld';
import { DEMO_CONFIGURATIONS } from '../demo/runs';
import { SCALES } from '../demo/options';
import { checkOverrides } from './overrides';

/** The book's sections, in the order RESULTS.md shows them. */
export const SECTIONS = ['main', 'judges', 'seed_size', 'ablation', 'noise'] as const;
export type SectionName = (typeof SECTIONS)[number];

/** Run settings of a section's cells; unset lr / beta mean the demo's per-world tuning (tools/demo/options.ts). */
export interface RunSettings {
  rounds: number;
  eval_prompts: number;
  scale: string;
  lr?: number;
  beta?: number;
}

/** A configuration variant: a name, the coordinator configuration it runs, and RunSpec overrides (proto3 JSON). */
export interface Variant {
  name: string;
  config: string;
  overrides: Record<string, unknown>;
}

export interface Section {
  worlds: string[];
  variants: Variant[];
  budgets: number[];
  seeds: number[];
  noise: number[];
  settings: RunSettings;
  /** `also:` blocks: more cells for the same section (other worlds with fewer configurations, say); a block's
   * omitted keys take the section's values. */
  also: Omit<Section, 'also'>[];
}

export interface Plan {
  name: string;
  /** Variant names whose rows results.json marks `"recommended": true`. */
  recommended: string[];
  /** `tuned_baseline:` per world, a dpo-seed variant at its best screened setting; the book adds differences to it. */
  tunedBaseline?: Record<string, string>;
  sections: Partial<Record<SectionName, Section>>;
  /** `findings:` as written: a Markdown file, relative to the plan's folder, that the book prints before its tables. */
  findingsFile?: string;
  /** That file's text, once read (campaign.ts readPlan). */
  findings?: string;
}

export class PlanError extends Error {}

const DEFAULT_SETTINGS: RunSettings = { rounds: 2, eval_prompts: SCALES.cpu.evalPrompts, scale: 'cpu' };
const NAME = /^[a-z0-9][a-z0-9._-]{0,23}$/;
const MAX_BUDGET = 1_000_000;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, where: string, keys: readonly string[]): Json {
  if (!isObject(value)) throw new PlanError(`${where}: expected a mapping, got ${JSON.stringify(value)}`);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw new PlanError(`${where}.${key}: unknown key (known: ${keys.join(', ')})`);
  }
  return value;
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value) || value.length === 0) throw new PlanError(`${where}: expected a non-empty list, got ${JSON.stringify(value)}`);
  return value;
}

function distinct<T>(values: T[], where: string): T[] {
  const seen = new Set<string>();
  for (const v of values) {
    const key = JSON.stringify(v);
    if (seen.has(key)) throw new PlanError(`${where}: ${key} is listed twice`);
    seen.add(key);
  }
  return values;
}

function integer(value: unknown, where: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new PlanError(`${where}: expected an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function positive(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new PlanError(`${where}: expected a positive number, got ${JSON.stringify(value)}`);
  return value;
}

function noiseRate(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 0.5) {
    throw new PlanError(`${where}: expected a fraction of flipped seed labels in [0, 0.5), got ${JSON.stringify(value)}`);
  }
  return value;
}

function settings(value: unknown, where: string, base: RunSettings): RunSettings {
  if (value === undefined) return base;
  const raw = object(value, where, ['rounds', 'eval_prompts', 'scale', 'lr', 'beta']);
  const out: RunSettings = { ...base };
  if (raw.rounds !== undefined) out.rounds = integer(raw.rounds, `${where}.rounds`, 1, 3);
  if (raw.eval_prompts !== undefined) out.eval_prompts = integer(raw.eval_prompts, `${where}.eval_prompts`, 1, 100_000);
  if (raw.scale !== undefined) {
    if (typeof raw.scale !== 'string' || !(raw.scale in SCALES)) {
      throw new PlanError(`${where}.scale: unknown scale ${JSON.stringify(raw.scale)} (known: ${Object.keys(SCALES).join(', ')})`);
    }
    out.scale = raw.scale;
  }
  if (raw.lr !== undefined) out.lr = positive(raw.lr, `${where}.lr`);
  if (raw.beta !== undefined) out.beta = positive(raw.beta, `${where}.beta`);
  return out;
}

function variantName(value: unknown, where: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new PlanError(`${where}: a variant name is 1-24 characters of [a-z0-9._-], starting with a letter or digit; got ${JSON.stringify(value)}`);
  }
  return value;
}

function variant(value: unknown, where: string): Variant {
  const raw = object(value, where, ['name', 'config', 'overrides']);
  const name = variantName(raw.name, `${where}.name`);
  if (typeof raw.config !== 'string' || !DEMO_CONFIGURATIONS.has(raw.config)) {
    throw new PlanError(`${where}.config: unknown configuration ${JSON.stringify(raw.config)} (known: ${[...DEMO_CONFIGURATIONS.keys()].join(', ')})`);
  }
  const overrides = raw.overrides === undefined ? {} : raw.overrides;
  if (!isObject(overrides)) throw new PlanError(`${where}.overrides: expected a mapping of RunSpec fields`);
  checkOverrides(overrides, `${where}.overrides`, PlanError);
  return { name, config: raw.config, overrides };
}

/** A section's `configs` entry: a configuration name, a plan-level variant's name, or an inline variant. */
function sectionVariant(value: unknown, where: string, named: ReadonlyMap<string, Variant>): Variant {
  if (isObject(value)) return variant(value, where);
  if (typeof value === 'string') {
    const found = named.get(value);
    if (found) return found;
    if (DEMO_CONFIGURATIONS.has(value)) return { name: value, config: value, overrides: {} };
  }
  throw new PlanError(
    `${where}: unknown configuration or variant ${JSON.stringify(value)} (configurations: ${[...DEMO_CONFIGURATIONS.keys()].join(', ')}; ` +
      `variants: ${[...named.keys()].join(', ') || 'none'})`,
  );
}

function section(value: unknown, where: string, named: ReadonlyMap<string, Variant>, base: RunSettings, parent?: Section): Section {
  const raw = object(value, where, parent ? ['worlds', 'configs', 'budgets', 'seeds', 'noise', 'settings'] : ['worlds', 'configs', 'budgets', 'seeds', 'noise', 'settings', 'also']);
  const worlds =
    parent && raw.worlds === undefined
      ? parent.worlds
      : distinct(
          list(raw.worlds, `${where}.worlds`).map((w, i) => {
            if (typeof w !== 'string' || !WORLDS.has(w)) throw new PlanError(`${where}.worlds[${i}]: unknown world ${JSON.stringify(w)} (known: ${[...WORLDS.keys()].join(', ')})`);
            return w;
          }),
          `${where}.worlds`,
        );
  const variants = parent && raw.configs === undefined ? parent.variants : list(raw.configs, `${where}.configs`).map((v, i) => sectionVariant(v, `${where}.configs[${i}]`, named));
  distinct(variants.map((v) => v.name), `${where}.configs`);
  const budgets =
    parent && raw.budgets === undefined ? parent.budgets : distinct(list(raw.budgets, `${where}.budgets`).map((b, i) => integer(b, `${where}.budgets[${i}]`, 100, MAX_BUDGET)), `${where}.budgets`);
  const seeds = parent && raw.seeds === undefined ? parent.seeds : distinct(list(raw.seeds, `${where}.seeds`).map((s, i) => integer(s, `${where}.seeds[${i}]`, 1, 2 ** 31)), `${where}.seeds`);
  const rates = raw.noise === undefined ? (parent ? parent.noise : [0]) : list(raw.noise, `${where}.noise`);
  const noise = distinct(rates.map((n, i) => noiseRate(n, `${where}.noise[${i}]`)), `${where}.noise`);
  const own: Section = { worlds, variants, budgets, seeds, noise, settings: parent && raw.settings === undefined ? parent.settings : settings(raw.settings, `${where}.settings`, base), also: [] };
  if (raw.also !== undefined) own.also = list(raw.also, `${where}.also`).map((b, i) => section(b, `${where}.also[${i}]`, named, base, own));
  return own;
}

/** Parses and validates a plan's YAML text; `fallbackName` (the file's base name) names a plan without `name`. */
/** The findings file may not open a section of its own: the book's five sections are its only `#`/`##` headings. */
export function checkFindings(text: string, file: string): void {
  const heading = text.split('\n').findIndex((line) => /^#{1,2} /.test(line));
  if (heading >= 0) throw new PlanError(`findings: line ${heading + 1} of ${file} is a '#' or '##' heading; the book's sections are its only ones (use ###)`);
}

/**
 * `tuned_baseline:` a variant name (every world of the plan) or a map world → variant name; each must be a variant of
 * the plan other than dpo-seed itself.
 */
function tunedBaseline(value: unknown, sections: Partial<Record<SectionName, Section>>, known: ReadonlySet<string>): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const worlds = [...new Set(Object.values(sections).flatMap((s) => [s, ...s.also].flatMap((b) => b.worlds)))];
  const byWorld: Record<string, unknown> = typeof value === 'string' ? Object.fromEntries(worlds.map((w) => [w, value])) : object(value, 'tuned_baseline', worlds);
  for (const [world, name] of Object.entries(byWorld)) {
    if (typeof name !== 'string' || !known.has(name) || name === 'dpo-seed') {
      const where = typeof value === 'string' ? 'tuned_baseline' : `tuned_baseline.${world}`;
      throw new PlanError(`${where}: ${JSON.stringify(name)} is not a variant of any section other than dpo-seed (${[...known].join(', ')})`);
    }
  }
  return byWorld as Record<string, string>;
}

export function parsePlan(text: string, fallbackName: string): Plan {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new PlanError(`not valid YAML: ${(error as Error).message}`);
  }
  const raw = object(doc, 'plan', ['name', 'recommended', 'tuned_baseline', 'settings', 'variants', 'sections', 'findings']);
  const name = raw.name === undefined ? fallbackName : variantName(raw.name, 'name');
  const base = settings(raw.settings, 'settings', DEFAULT_SETTINGS);
  const named = new Map<string, Variant>();
  for (const [i, v] of (raw.variants === undefined ? [] : list(raw.variants, 'variants')).entries()) {
    const parsed = variant(v, `variants[${i}]`);
    if (named.has(parsed.name) || DEMO_CONFIGURATIONS.has(parsed.name)) {
      throw new PlanError(`variants[${i}].name: '${parsed.name}' is already a configuration or variant name`);
    }
    named.set(parsed.name, parsed);
  }
  const rawSections = object(raw.sections, 'sections', SECTIONS);
  const sections: Partial<Record<SectionName, Section>> = {};
  for (const key of SECTIONS) {
    if (rawSections[key] !== undefined) sections[key] = section(rawSections[key], `sections.${key}`, named, base);
  }
  if (Object.keys(sections).length === 0) throw new PlanError(`sections: fill at least one of ${SECTIONS.join(', ')}`);
  const recommended = raw.recommended === undefined ? [] : typeof raw.recommended === 'string' ? [raw.recommended] : list(raw.recommended, 'recommended');
  const known = new Set(Object.values(sections).flatMap((s) => [s, ...s.also].flatMap((b) => b.variants.map((v) => v.name))));
  for (const [i, r] of recommended.entries()) {
    if (typeof r !== 'string' || !known.has(r)) {
      throw new PlanError(`recommended${Array.isArray(raw.recommended) ? `[${i}]` : ''}: ${JSON.stringify(r)} is not a configuration of any section (${[...known].join(', ')})`);
    }
  }
  const tuned = tunedBaseline(raw.tuned_baseline, sections, known);
  if (raw.findings !== undefined && (typeof raw.findings !== 'string' || !/\.md$/.test(raw.findings))) {
    throw new PlanError(`findings: expected the path of a Markdown (.md) file, got ${JSON.stringify(raw.findings)}`);
  }
  return { name, recommended: recommended as string[], ...(tuned ? { tunedBaseline: tuned } : {}), sections, findingsFile: raw.findings as string | undefined };
}
