import * as path from 'node:path';
import { WORLDS } from '@alignment/toyworld';
import { parseFlags, UsageError } from './cli-flags';
import { CPU_CAPABILITIES, trainerCpuLevel } from './cpu-level';
import { DEMO_CONFIGURATIONS, GOLD_ROUNDS, type RunSettings } from './runs';
import { defaultPorts, ROOT } from './stack';
import type { BaseModelOptions } from './world-model';

/** Configurations run when --configs is not given. */
export const DEFAULT_CONFIGS = ['dpo-seed', 'spa', 'wdro', GOLD_ROUNDS].join(',');

/**
 * gold-rounds' gold labels a round, as a share of the prompt budget: 300 at 15K (experiments/gold-noise-15k-findings.md),
 * 30 at the demo's 1.5K (experiments/gold-demo-1k5-findings.md).
 */
export const GOLD_ROUND_SHARE = 0.02;

export const USAGE = `npm run demo -- [options]

  --world NAME         toy world: ${[...WORLDS.keys()].join(' | ')} (default arithmetic)
  --configs A,B,...    configurations (default ${DEFAULT_CONFIGS}); known: ${[...DEMO_CONFIGURATIONS.keys()].join(', ')}
                       dpo-gold = DPO on gold labels for the whole prompt budget (the 100% row)
                       gold-rounds = rounds trained on gold labels of the policy's samples, ${GOLD_ROUND_SHARE * 100}% of the budget
                       a round (the recommended configuration; not self-annotation)
  --rounds N           self-annotation rounds, 1..3 (default 2)
  --seeds S,S,...      run seeds; figures are averaged over them (default 1)
  --scale NAME         cpu (default: minutes on 2 cores) | paper (the paper's proportions at 60K prompts; a GPU machine)
  --prompt-budget N    prompts of the whole preference budget (overrides the scale's)
  --eval-prompts N     held-out evaluation prompts (overrides the scale's)
  --lr X               learning rate of every preference job (default: tuned per world)
  --beta X             DPO temperature β (default: tuned per world)
  --data-dir DIR       state of the demo's stack, its runs and reports (default .data/demo)
  --world-cache DIR    base models and world data, cached by content hash (default DATA_DIR/worlds)
  --port-base P        the stack's five ports are P..P+4 (default 50151)
  --cpu-capability L   the trainer's PyTorch kernel level: ${CPU_CAPABILITIES.join(' | ')} (default: $ATEN_CPU_CAPABILITY,
                       else avx2, the trainer's reproducibility pin; each level builds and caches its own base model)
  --help`;

export { UsageError };

/** The options USAGE lists, each taking a value. */
const VALUED_OPTIONS = [...USAGE.matchAll(/^ {2}(--[a-z-]+) [A-Z]/gm)].map((m) => m[1]);

export interface DemoOptions {
  world: string;
  configs: string[];
  rounds: number;
  seeds: number[];
  scale: string;
  dataDir: string;
  worldCache: string;
  portBase: number;
  /** Environment the demo's stack gets on top of the demo's own: the trainer's kernel level (none when pins are off). */
  stackEnv: Record<string, string>;
  base: BaseModelOptions;
  run: Omit<RunSettings, 'seed' | 'rounds'>;
  /** Generation of the on-policy gold pairs (the seed set and dpo-gold's pairs). */
  pairGeneration: { temperature: number; maxNewTokens: number };
}

interface Scale {
  promptBudget: number;
  sftExamples: number;
  evalPrompts: number;
  samplesPerPrompt: number;
  vocabSize: number;
  architecture: BaseModelOptions['architecture'];
  sft: BaseModelOptions['sft'];
  run: Omit<RunSettings, 'seed' | 'rounds' | 'beta' | 'goldRounds'>;
}

/**
 * β and the preference jobs' learning rate per world, from a sweep of dpo-gold on the CPU scale (lr 2e-5 … 6e-4,
 * β 0.1 … 1, seed 1; win rate vs π_init). Too high a rate turned samples into run-on gibberish (docs/benchmark.md's pilot
 * saw the same) and, in the arithmetic world, unlearned the sums; too low barely moved the model. `--lr` and `--beta`
 * override them.
 */
export const WORLD_TRAINING: Readonly<Record<string, { beta: number; learningRate: number; goldRoundLearningRate?: number }>> = {
  // dpo-gold with the hedging-aware gold, avx2 kernels, mean of seeds 1-2 (docs/reproducibility.md): lr 1e-4 β 0.25 →
  // 0.766, lr 5e-5 β 0.25 → 0.764, lr 5e-5 β 0.5 → 0.762, lr 1e-4 β 0.5 → 0.792 (before the hedging charge: 0.50-0.68)
  arithmetic: { beta: 0.25, learningRate: 1e-4 },
  // dpo-gold: lr 3e-4 β 0.5 → 0.900, lr 5e-5 β 0.5 → 0.629. gold-rounds' rounds at 1e-4: at 3e-4, four epochs a round
  // ran one seed in three below π_init both at 1.5K (0.479, 0.497) and at 15K (0.211, 0.193), at 1e-4 none
  // (experiments/gold-demo-1k5-findings.md, experiments/gold-noise-15k-findings.md)
  sentiment: { beta: 0.5, learningRate: 3e-4, goldRoundLearningRate: 1e-4 },
  // dpo-gold, seeds 1-2, avx2 (items in the kind's order): lr 1e-5 β 0.25 → 0.557, lr 3e-5 β 0.5 → 0.664,
  // lr 5e-5 β 0.5 → 0.724, lr 1e-4 β 0.5 → 0.639 (before the fixed item order, lr 3e-5 and 1e-4 β 0.25 turned
  // samples into gibberish: 0.48-0.49). With who and the occasion in every prompt (the 15K budget's prompt space):
  // lr 5e-5 β 0.5 → 0.724 / 0.746 (seeds 1 / 2), 0.764 / 0.759 at the `default` kernel level
  listing: { beta: 0.5, learningRate: 5e-5 },
};

/** The seed every world's data and base model are drawn from. */
export const WORLD_SEED = 1;

const GENERATION = { temperature: 1.0, maxNewTokens: 48 };

export const SCALES: Record<string, Scale> = {
  cpu: {
    promptBudget: 1500,
    sftExamples: 20_000,
    evalPrompts: 200,
    samplesPerPrompt: 4,
    vocabSize: 1024,
    architecture: { modelType: 'llama', hiddenSize: 96, numLayers: 3, numAttentionHeads: 4, numKeyValueHeads: 0, intermediateSize: 384, maxPositionEmbeddings: 128 },
    sft: { learningRate: 3e-3, epochs: 3, batchSize: 32, maxLength: 96, lrScheduler: 'cosine', warmupRatio: 0.05 },
    // β and the learning rate: per world (WORLD_TRAINING).
    run: {
      samplesPerPrompt: 4,
      generation: GENERATION,
      seedTraining: { epochs: 4, batchSize: 8, maxLength: 96, lrScheduler: 'constant', warmupRatio: 0 },
      roundTraining: { epochs: 1, batchSize: 16, maxLength: 96, lrScheduler: 'constant', warmupRatio: 0 },
      wdro: { rho: 0.1, delta: 0.1 },
      dndLambdaSchedule: [0.5, 0.25, 0.125],
    },
  },
  paper: {
    promptBudget: 60_000,
    sftExamples: 200_000,
    evalPrompts: 500,
    samplesPerPrompt: 4,
    vocabSize: 2048,
    architecture: { modelType: 'llama', hiddenSize: 256, numLayers: 4, numAttentionHeads: 8, numKeyValueHeads: 0, intermediateSize: 1024, maxPositionEmbeddings: 128 },
    sft: { learningRate: 1e-3, epochs: 2, batchSize: 64, maxLength: 96, lrScheduler: 'cosine', warmupRatio: 0.05 },
    run: {
      samplesPerPrompt: 4,
      generation: GENERATION,
      seedTraining: { epochs: 3, batchSize: 32, maxLength: 96, lrScheduler: 'constant', warmupRatio: 0 },
      roundTraining: { epochs: 1, batchSize: 32, maxLength: 96, lrScheduler: 'constant', warmupRatio: 0 },
      wdro: { rho: 0.1, delta: 0.1 },
      dndLambdaSchedule: [0.5, 0.25, 0.125],
    },
  },
};

function positiveInt(flag: string, raw: string, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new UsageError(`${flag}: expected an integer in 1..${max}, got '${raw}'`);
  }
  return value;
}

function positiveNumber(flag: string, raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`${flag}: expected a positive number, got '${raw}'`);
  return value;
}

export function parseOptions(argv: string[]): DemoOptions | 'help' {
  const { values, help } = parseFlags(argv, VALUED_OPTIONS);
  if (help) return 'help';
  const world = values.get('--world') ?? 'arithmetic';
  if (!WORLDS.has(world)) throw new UsageError(`--world: unknown world '${world}' (known: ${[...WORLDS.keys()].join(', ')})`);
  const configs = (values.get('--configs') ?? DEFAULT_CONFIGS).split(',').map((c) => c.trim()).filter(Boolean);
  if (configs.length === 0) throw new UsageError('--configs: give at least one configuration');
  for (const c of configs) {
    if (!DEMO_CONFIGURATIONS.has(c)) throw new UsageError(`--configs: unknown configuration '${c}' (known: ${[...DEMO_CONFIGURATIONS.keys()].join(', ')})`);
  }
  if (new Set(configs).size !== configs.length) throw new UsageError('--configs: a configuration is listed twice');
  const rounds = positiveInt('--rounds', values.get('--rounds') ?? '2', 3);
  const seeds = (values.get('--seeds') ?? '1').split(',').map((s) => positiveInt('--seeds', s.trim(), 2 ** 31));
  if (new Set(seeds).size !== seeds.length) throw new UsageError('--seeds: a seed is listed twice');
  const scaleName = values.get('--scale') ?? 'cpu';
  const scale = SCALES[scaleName];
  if (!scale) throw new UsageError(`--scale: unknown scale '${scaleName}' (known: ${Object.keys(SCALES).join(', ')})`);
  const promptBudget = values.has('--prompt-budget') ? positiveInt('--prompt-budget', values.get('--prompt-budget')!) : scale.promptBudget;
  if (promptBudget < 100) throw new UsageError(`--prompt-budget: at least 100 prompts (the seed set is 3.3% of it), got ${promptBudget}`);
  const evalPrompts = values.has('--eval-prompts') ? positiveInt('--eval-prompts', values.get('--eval-prompts')!) : scale.evalPrompts;
  const tuned = WORLD_TRAINING[world];
  const lr = values.has('--lr') ? positiveNumber('--lr', values.get('--lr')!) : tuned.learningRate;
  const portBase = positiveInt('--port-base', values.get('--port-base') ?? '50151', 65530);
  const run = {
    ...scale.run,
    samplesPerPrompt: scale.samplesPerPrompt,
    beta: values.has('--beta') ? positiveNumber('--beta', values.get('--beta')!) : tuned.beta,
    seedTraining: { ...scale.run.seedTraining, learningRate: lr },
    roundTraining: { ...scale.run.roundTraining, learningRate: lr },
    goldRounds: {
      // The stack's judge service knows every toy world's gold rule (the seed pairs are labelled through it too).
      annotatorAddress: `localhost:${defaultPorts(portBase).judge}`,
      pairsPerRound: Math.max(1, Math.round(GOLD_ROUND_SHARE * promptBudget)),
      learningRate: values.has('--lr') ? lr : (tuned.goldRoundLearningRate ?? lr),
    },
  };
  const dataDir = path.resolve(ROOT, values.get('--data-dir') ?? '.data/demo');
  const capability = values.get('--cpu-capability');
  if (capability !== undefined && !(CPU_CAPABILITIES as readonly string[]).includes(capability)) {
    throw new UsageError(`--cpu-capability: expected one of ${CPU_CAPABILITIES.join(', ')}, got '${capability}'`);
  }
  // The level is always passed to the stack explicitly, so the base-model cache key is the level the trainer runs at
  // even if the trainer's own pin changes.
  const cpuCapability = trainerCpuLevel(capability ? { ...process.env, ATEN_CPU_CAPABILITY: capability } : process.env);
  const stackEnv: Record<string, string> = cpuCapability === 'native' ? {} : { ATEN_CPU_CAPABILITY: cpuCapability };
  return {
    world,
    configs,
    rounds,
    seeds,
    scale: scaleName,
    dataDir,
    worldCache: values.has('--world-cache') ? path.resolve(ROOT, values.get('--world-cache')!) : path.join(dataDir, 'worlds'),
    portBase,
    stackEnv,
    base: {
      // The world (its data and base model) is fixed; the run seeds vary seed pairs, training and sampling.
      seed: WORLD_SEED,
      cpuCapability,
      promptBudget,
      rounds: 3,
      sftExamples: scale.sftExamples,
      evalPrompts,
      vocabSize: scale.vocabSize,
      architecture: scale.architecture,
      sft: scale.sft,
    },
    run,
    pairGeneration: GENERATION,
  };
}
