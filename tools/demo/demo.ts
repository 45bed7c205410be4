/**
 * `npm run demo`: the project's main job. On one toy world (libs/toyworld) it starts the five services, builds or
 * reuses the world's base model (SFT by the trainer), labels a 3.3% seed set on-policy with the world's hidden gold
 * annotator, runs each configuration through the coordinator (round 0 seed DPO, then self-annotation rounds), and
 * evaluates every round against π_init with the gold annotator. It prints the table, writes report.md, PNG plots and
 * results.json into its report directory, and prints that directory's path as its last line.
 *
 *   npm run demo                                   # arithmetic world, dpo-seed / spa / wdro / gold-rounds, 2 rounds, seed 1
 *   npm run demo -- --world sentiment --configs dpo-seed,spa,wdro,dpo-gold --seeds 1,2,3
 *
 * Exit status: 0 when every configuration ran, 1 when something failed (the message says what), 2 for bad options.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getWorld } from '@alignment/toyworld';
import { parseOptions, UsageError, USAGE, type DemoOptions } from './options';
import { Progress } from './progress';
import { formatTable, writeReport } from './report';
import { mean, spread } from './metrics';
import type { ConfigResult, DemoResults, SeedResult } from './results';
import { evaluateRun, goldPairs, RECOMMENDED_CONFIGURATION, runSpec, runToCompletion, type GoldPairs } from './runs';
import { connect, defaultPorts, DemoStack, venvPython, type StackClients } from './stack';
import { buildOrReuseBaseModel, type WorldInputs } from './world-model';

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

/** Final-round figures of one configuration, averaged over its seeds. */
function summarise(config: string, world: string, seeds: SeedResult[]): ConfigResult {
  const finals = seeds.map((s) => s.rounds[s.rounds.length - 1]);
  const accuracies = finals.map((f) => f.self_label_accuracy).filter((a): a is number => a !== null);
  const avgPair = (pick: (f: (typeof finals)[number]) => [number, number]): [number, number] => [mean(finals.map((f) => pick(f)[0])), mean(finals.map((f) => pick(f)[1]))];
  return {
    config,
    world,
    recommended: config === RECOMMENDED_CONFIGURATION,
    win_rate: mean(finals.map((f) => f.win_rate)),
    win_rate_ci: avgPair((f) => f.win_rate_ci),
    lc_win_rate: mean(finals.map((f) => f.lc_win_rate)),
    gold_reward: mean(finals.map((f) => f.gold_reward)),
    gold_reward_ci: avgPair((f) => f.gold_reward_ci),
    mean_length: mean(finals.map((f) => f.mean_length)),
    kl: mean(finals.map((f) => f.kl)),
    self_label_accuracy: accuracies.length > 0 ? mean(accuracies) : null,
    win_rate_spread: spread(finals.map((f) => f.win_rate)),
    seeds,
  };
}

async function runDemo(options: DemoOptions, progress: Progress): Promise<string> {
  const world = getWorld(options.world);
  const demoId = `${timestamp()}-${world.name}`;
  const reportDir = path.join(options.dataDir, 'reports', demoId);
  fs.mkdirSync(reportDir, { recursive: true });
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const phase = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await work();
    } finally {
      timings[name] = (Date.now() - started) / 1000;
    }
  };

  progress.log(`demo ${demoId}: world '${world.name}' (gold: ${world.description}); trainer kernels: ${options.base.cpuCapability}`);
  const python = await phase('python environment', async () => venvPython());
  const ports = defaultPorts(options.portBase);
  const stack = new DemoStack(ports, options.dataDir, path.join(reportDir, 'stack.log'), options.stackEnv);
  let clients: StackClients | undefined;
  try {
    progress.update('starting the services', 0, 1);
    await phase('stack start', () => stack.start());
    progress.update('starting the services', 1, 1);
    clients = connect(ports);
    const c = clients;

    const inputs: WorldInputs = await phase('base model', () =>
      buildOrReuseBaseModel(c, python, world, options.base, options.worldCache, path.join(reportDir, 'prompts'), (done, total, detail) =>
        progress.update(`base model (SFT, ${world.name})`, done, total, detail),
      ),
    );
    progress.log(
      inputs.built
        ? `base model built in ${inputs.sftSeconds.toFixed(0)} s: ${inputs.dir}`
        : `base model reused (cached by content hash): ${inputs.dir}`,
    );

    const seedPairStats: NonNullable<DemoResults['seed_pairs']> = [];
    const seedResults = new Map<string, SeedResult[]>(options.configs.map((config) => [config, []]));
    for (const seed of options.seeds) {
      const pairsDir = path.join(reportDir, `pairs-s${seed}`);
      const generation = { seed, ...options.pairGeneration };
      const seedPairs: GoldPairs = await phase(`seed pairs (seed ${seed})`, () =>
        goldPairs(c, world, inputs.model, [inputs.seedPrompts], path.join(pairsDir, 'seed'), generation, (done, total) =>
          progress.update(`seed pairs: π_init samples, gold labels`, done, total),
        ),
      );
      seedPairStats.push({ seed, prompts: seedPairs.prompts, pairs: seedPairs.pairs, dropped: seedPairs.dropped });
      progress.log(`seed ${seed}: ${seedPairs.pairs} gold-labelled seed pairs from ${seedPairs.prompts} prompts (${seedPairs.dropped} ties dropped)`);
      let allGold: GoldPairs | undefined;
      if (options.configs.includes('dpo-gold')) {
        allGold = await phase(`gold pairs, whole budget (seed ${seed})`, () =>
          goldPairs(c, world, inputs.model, [inputs.seedPrompts, ...inputs.roundPrompts.slice(0, options.rounds)], path.join(pairsDir, 'gold'), generation, (done, total) =>
            progress.update('gold pairs for the whole budget', done, total),
          ),
        );
      }
      for (const config of options.configs) {
        const runId = `demo-${demoId}-${config}-s${seed}`;
        const pairs = config === 'dpo-gold' ? allGold!.file : seedPairs.file;
        const spec = runSpec(config, world, inputs, pairs, { ...options.run, rounds: options.rounds, seed });
        const started = Date.now();
        const run = await phase(`${config} (seed ${seed})`, () =>
          runToCompletion(c, runId, spec, (stage, done, total) => progress.update(`${config} s${seed} ${stage}`, done, total)),
        );
        progress.update(`${config} s${seed} evaluating`, 0, 1);
        const rounds = await evaluateRun(c, world, options.dataDir, run, inputs.model);
        seedResults.get(config)!.push({ seed, run_id: runId, rounds, seconds: (Date.now() - started) / 1000 });
        const last = rounds[rounds.length - 1];
        progress.log(
          `${config} seed ${seed}: win rate ${last.win_rate.toFixed(3)} [${last.win_rate_ci.map((v) => v.toFixed(3)).join(', ')}], ` +
            `gold reward ${last.gold_reward.toFixed(3)} (π_init ${last.init_gold_reward.toFixed(3)}) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
        );
        for (const r of rounds) {
          if (r.self_label_accuracy !== null && r.self_label_accuracy < 0.5) {
            const warning = `${config} seed ${seed} round ${r.round}: self-label accuracy ${r.self_label_accuracy.toFixed(3)} is WORSE THAN CHANCE: the judge is amplifying the wrong direction`;
            warnings.push(warning);
            progress.log(`WARNING ${warning}`);
          }
        }
      }
    }

    const configs = options.configs.map((config) => summarise(config, world.name, seedResults.get(config)!));
    const round0 = configs[0].seeds[0].rounds[0];
    const results: DemoResults = {
      world: world.name,
      gold: world.description,
      created_at: new Date().toISOString(),
      options: { configs: options.configs, rounds: options.rounds, seeds: options.seeds, scale: options.scale, base: options.base, run: options.run },
      sft: { gold_reward: round0.init_gold_reward, mean_length: round0.init_mean_length },
      configs,
      seed_pairs: seedPairStats,
      timings,
      warnings,
    };
    progress.update('writing the report', 0, 1);
    const report = await writeReport(reportDir, results, python);
    progress.done();
    process.stdout.write(`\n${formatTable(results)}\n`);
    for (const warning of warnings) process.stdout.write(`WARNING ${warning}\n`);
    process.stdout.write(`report: ${report.reportMd}\n`);
    return reportDir;
  } finally {
    clients?.close();
    progress.update('stopping the services', 0, 1);
    await stack.stop();
    progress.done();
  }
}

async function main(): Promise<number> {
  let options: DemoOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`demo: ${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const progress = new Progress(process.stderr);
  try {
    const reportDir = await runDemo(options, progress);
    process.stdout.write(`${reportDir}\n`);
    return 0;
  } catch (error) {
    progress.done();
    process.stderr.write(`demo failed: ${(error as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
