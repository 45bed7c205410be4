// RunSpec validation: a valid spec passes and comes back pinned; each invalid field is rejected with an
// InvalidArgumentError naming it as spec.<snake_case path>.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { AdversarySchedule, Configuration, JudgeMethod, Pairing, RoundPromptOverlap, RunSpec } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { makeWorkspace, validSpec, type Workspace } from '../../testing/run-fixtures';
import { validateSpec } from './run-spec';

let ws: Workspace;
beforeAll(() => {
  ws = makeWorkspace();
  fs.mkdirSync(path.join(ws.root, 'judge', 'onnx'), { recursive: true });
  fs.writeFileSync(path.join(ws.root, 'judge', 'onnx', 'model.onnx'), 'judge');
  fs.mkdirSync(path.join(ws.root, 'empty'), { recursive: true });
  fs.writeFileSync(path.join(ws.root, 'bad-json.jsonl'), '{"prompt":"p","chosen":"a","rejected":"b"}\n{"prompt":"q","chosen":"a","rejected":"b"}\n{not json\n');
  fs.writeFileSync(path.join(ws.root, 'no-rejected.jsonl'), '{"prompt":"p","chosen":"a","rejected":"b"}\n{"prompt":"q","chosen":"a"}\n');
  fs.writeFileSync(path.join(ws.root, 'empty.jsonl'), '\n');
  fs.writeFileSync(path.join(ws.root, 'identical.jsonl'), '{"prompt":"p","chosen":"a","rejected":"a"}\n');
});
afterAll(() => ws.cleanup());

/** Runs validation on the valid spec after `mutate`, and returns the field of the error (or 'valid'). */
async function fieldOf(mutate: (spec: RunSpec) => void): Promise<string> {
  const spec = validSpec(ws);
  mutate(spec);
  try {
    await validateSpec(spec);
    return 'valid';
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error.field;
    throw error;
  }
}

async function errorOf(mutate: (spec: RunSpec) => void): Promise<InvalidArgumentError> {
  const spec = validSpec(ws);
  mutate(spec);
  return validateSpec(spec).then(
    () => {
      throw new Error('expected an InvalidArgumentError');
    },
    (error) => error as InvalidArgumentError,
  );
}

const judgeModel = () => ({ onnx: { uri: path.join(ws.root, 'judge', 'onnx'), sha256: '', sizeBytes: 0 } });
const asConfig = (configuration: Configuration) => (s: RunSpec) => {
  s.configuration = configuration;
};

describe('a valid spec', () => {
  it('passes and comes back pinned: absolute file URIs and the sha256 of every input file', async () => {
    const { spec, plan, rounds } = await validateSpec(validSpec(ws));
    expect(plan.name).toBe('spa');
    expect(rounds).toBe(2);
    const sha = createHash('sha256').update(fs.readFileSync(ws.seedPairs)).digest('hex');
    expect(spec.seedPairs).toEqual({ uri: `file://${ws.seedPairs}`, sha256: sha, sizeBytes: fs.statSync(ws.seedPairs).size });
    expect(spec.prompts?.$case === 'roundPrompts' && spec.prompts.value.rounds.every((r) => r.sha256.length === 64)).toBe(true);
    expect(spec.evaluation?.prompts?.sha256).toHaveLength(64);
    expect(spec.baseModel?.hfCheckpoint?.uri).toBe(`file://${ws.hfCheckpoint}`);
  });

  it('accepts the sha256 a client gives when it matches', async () => {
    const sha = createHash('sha256').update(fs.readFileSync(ws.seedPairs)).digest('hex');
    expect(await fieldOf((s) => (s.seedPairs!.sha256 = sha))).toBe('valid');
  });

  it('dpo-seed and the robust-DPO baselines ignore rounds and need no prompts', async () => {
    for (const configuration of [Configuration.CONFIGURATION_DPO_SEED, Configuration.CONFIGURATION_CDPO]) {
      const spec = validSpec(ws, { configuration, rounds: 3, prompts: undefined, roundTraining: undefined });
      const validated = await validateSpec(spec);
      expect(validated.rounds).toBe(0);
    }
  });

  it('splits one prompt file when seed_fraction skips the seed part (given fractions, and the paper ones)', async () => {
    const split = { $case: 'promptSplit' as const, value: { prompts: { uri: ws.promptPool }, roundFractions: [0.3, 0.3, 0.3], seedFraction: 0.1 } };
    expect((await validateSpec(validSpec(ws, { rounds: 3, prompts: split }))).rounds).toBe(3);
    const paperPool = path.join(ws.root, 'paper-pool.jsonl');
    const lines = [...[0, 1, 2].map((i) => `seed prompt ${i}`), ...Array.from({ length: 97 }, (_, i) => `fresh prompt ${i}`)];
    fs.writeFileSync(paperPool, lines.map((prompt) => JSON.stringify({ prompt })).join('\n'));
    const paper = { $case: 'promptSplit' as const, value: { prompts: { uri: paperPool }, roundFractions: [], seedFraction: 0.033 } };
    expect((await validateSpec(validSpec(ws, { rounds: 3, prompts: paper }))).rounds).toBe(3);
  });

  it('accepts wdro with its budget and iter-dpo-rm with a judge model', async () => {
    expect(
      await fieldOf((s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO;
        s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.01, radius: { $case: 'rho', value: 0.3 } } };
      }),
    ).toBe('valid');
    expect(
      await fieldOf((s) => {
        s.configuration = Configuration.CONFIGURATION_ITER_DPO_RM;
        s.judgeModel = judgeModel();
      }),
    ).toBe('valid');
  });
});

describe('an invalid field is named', () => {
  const cases: Array<[string, (s: RunSpec) => void, string]> = [
    ['no configuration', asConfig(Configuration.CONFIGURATION_UNSPECIFIED), 'spec.configuration'],
    ['too many rounds', (s) => (s.rounds = 21), 'spec.rounds'],
    ['name too long', (s) => (s.name = 'x'.repeat(201)), 'spec.name'],
    ['no base model', (s) => (s.baseModel = undefined), 'spec.base_model'],
    ['hf checkpoint without config.json', (s) => (s.baseModel!.hfCheckpoint = { uri: path.join(ws.root, 'empty'), sha256: '', sizeBytes: 0 }), 'spec.base_model.hf_checkpoint.uri'],
    ['onnx directory missing', (s) => (s.baseModel!.onnx = { uri: path.join(ws.root, 'nope'), sha256: '', sizeBytes: 0 }), 'spec.base_model.onnx.uri'],
    ['onnx directory without model.onnx', (s) => (s.baseModel!.onnx = { uri: path.join(ws.root, 'empty'), sha256: '', sizeBytes: 0 }), 'spec.base_model.onnx.uri'],
    ['base model sha256 without a manifest', (s) => (s.baseModel!.onnx!.sha256 = 'a'.repeat(64)), 'spec.base_model.onnx.sha256'],
    ['seed pairs missing', (s) => (s.seedPairs = { uri: path.join(ws.root, 'missing.jsonl'), sha256: '', sizeBytes: 0 }), 'spec.seed_pairs.uri'],
    ['seed pairs not given', (s) => (s.seedPairs = undefined), 'spec.seed_pairs.uri'],
    ['seed pairs on gs', (s) => (s.seedPairs = { uri: 'gs://bucket/pairs.jsonl', sha256: '', sizeBytes: 0 }), 'spec.seed_pairs.uri'],
    ['seed pairs sha256 mismatch', (s) => (s.seedPairs!.sha256 = 'b'.repeat(64)), 'spec.seed_pairs.sha256'],
    ['seed pairs empty', (s) => (s.seedPairs!.uri = path.join(ws.root, 'empty.jsonl')), 'spec.seed_pairs.uri'],
    ['a seed pair with identical responses', (s) => (s.seedPairs!.uri = path.join(ws.root, 'identical.jsonl')), 'spec.seed_pairs.uri'],
    ['label noise 0.5', (s) => (s.labelNoiseRate = 0.5), 'spec.label_noise_rate'],
    ['label noise negative', (s) => (s.labelNoiseRate = -0.1), 'spec.label_noise_rate'],
    ['label noise NaN', (s) => (s.labelNoiseRate = NaN), 'spec.label_noise_rate'],
    ['no prompts with rounds', (s) => (s.prompts = undefined), 'spec.prompts'],
    ['prompt sets fewer than rounds', (s) => (s.rounds = 3), 'spec.round_prompts.rounds'],
    ['a prompt set missing', (s) => s.prompts?.$case === 'roundPrompts' && (s.prompts.value.rounds[1].uri = path.join(ws.root, 'missing.jsonl')), 'spec.round_prompts.rounds[1].uri'],
    ['two rounds with the same prompts', (s) => s.prompts?.$case === 'roundPrompts' && (s.prompts.value.rounds[1].uri = ws.roundPrompts[0]), 'spec.round_prompts.rounds[1].uri'],
    ['a round prompt set that is the seed pairs', (s) => s.prompts?.$case === 'roundPrompts' && (s.prompts.value.rounds[0].uri = ws.seedPairs), 'spec.round_prompts.rounds[0].uri'],
    [
      'split fractions summing past 1',
      (s) => (s.prompts = { $case: 'promptSplit', value: { prompts: { uri: ws.promptPool, sha256: '', sizeBytes: 0 }, roundFractions: [0.6, 0.5], seedFraction: undefined } }),
      'spec.prompt_split.round_fractions',
    ],
    [
      'split fractions count unlike rounds',
      (s) => (s.prompts = { $case: 'promptSplit', value: { prompts: { uri: ws.promptPool, sha256: '', sizeBytes: 0 }, roundFractions: [0.3], seedFraction: 0.1 } }),
      'spec.prompt_split.round_fractions',
    ],
    [
      'split fraction 0',
      (s) => (s.prompts = { $case: 'promptSplit', value: { prompts: { uri: ws.promptPool, sha256: '', sizeBytes: 0 }, roundFractions: [0.3, 0], seedFraction: 0.1 } }),
      'spec.prompt_split.round_fractions[1]',
    ],
    [
      'no paper fractions past 3 rounds',
      (s) => {
        s.rounds = 4;
        s.prompts = { $case: 'promptSplit', value: { prompts: { uri: ws.promptPool, sha256: '', sizeBytes: 0 }, roundFractions: [], seedFraction: 0.1 } };
      },
      'spec.prompt_split.round_fractions',
    ],
    [
      'split rounds overlapping the seed pairs, with REJECT',
      (s) => {
        s.prompts = { $case: 'promptSplit', value: { prompts: { uri: ws.promptPool, sha256: '', sizeBytes: 0 }, roundFractions: [0.3, 0.3], seedFraction: undefined } };
        s.roundPromptOverlap = RoundPromptOverlap.ROUND_PROMPT_OVERLAP_REJECT;
      },
      'spec.prompt_split.prompts.uri',
    ],
    ['an unknown round_prompt_overlap', (s) => (s.roundPromptOverlap = 9 as RoundPromptOverlap), 'spec.round_prompt_overlap'],
    ['held-out prompts that are trained on', (s) => (s.evaluation!.prompts!.uri = ws.roundPrompts[1]), 'spec.evaluation.prompts.uri'],
    ['held-out prompts missing', (s) => (s.evaluation!.prompts = undefined), 'spec.evaluation.prompts.uri'],
    ['one response per prompt', (s) => (s.generation!.n = 1), 'spec.generation.n'],
    ['too many responses', (s) => (s.generation!.n = 17), 'spec.generation.n'],
    ['negative temperature', (s) => (s.generation!.temperature = -0.1), 'spec.generation.temperature'],
    ['top_p 0', (s) => (s.generation!.topP = 0), 'spec.generation.top_p'],
    ['top_p above 1', (s) => (s.generation!.topP = 1.5), 'spec.generation.top_p'],
    ['max_new_tokens huge', (s) => (s.generation!.maxNewTokens = 100_000), 'spec.generation.max_new_tokens'],
    ['empty stop string', (s) => (s.generation!.stop = ['\n', '']), 'spec.generation.stop[1]'],
    ['greedy rounds', (s) => (s.generation!.greedy = true), 'spec.generation.greedy'],
    ['a sampling seed', (s) => (s.generation!.seed = 3), 'spec.generation.seed'],
    ['spa labelled by a reward model', (s) => (s.judgeMethod = JudgeMethod.JUDGE_METHOD_REWARD_MODEL), 'spec.judge_method'],
    ['iter-dpo-rm without a judge model', asConfig(Configuration.CONFIGURATION_ITER_DPO_RM), 'spec.judge_model'],
    [
      'iter-dpo-judge with a judge model lacking model.onnx',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_ITER_DPO_JUDGE;
        s.judgeModel = { onnx: { uri: path.join(ws.root, 'empty'), sha256: '', sizeBytes: 0 } };
      },
      'spec.judge_model.onnx.uri',
    ],
    [
      'iter-dpo-rm labelled by the LLM judge',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_ITER_DPO_RM;
        s.judgeMethod = JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE;
        s.judgeModel = judgeModel();
      },
      'spec.judge_method',
    ],
    ['a judge model for the implicit judge', (s) => (s.judgeModel = judgeModel()), 'spec.judge_model'],
    ['a rule for the round judge', (s) => (s.judgeRule = 'toy/gold'), 'spec.judge_rule'],
    ['beta 0', (s) => (s.loss = { beta: 0, dndLambdaSchedule: [] }), 'spec.loss.beta'],
    ['alpha above 1', (s) => (s.loss = { spa: { alpha: 1.5, window: 0, dndLambda: 0 }, dndLambdaSchedule: [] }), 'spec.loss.spa.alpha'],
    ['K of 100', (s) => (s.loss = { spa: { kPercentile: 100, window: 0, dndLambda: 0 }, dndLambdaSchedule: [] }), 'spec.loss.spa.k_percentile'],
    ['warm-up fraction 1', (s) => (s.loss = { spa: { warmupFraction: 1, window: 0, dndLambda: 0 }, dndLambdaSchedule: [] }), 'spec.loss.spa.warmup_fraction'],
    ['a fixed λ', (s) => (s.loss = { spa: { window: 0, dndLambda: 0.5 }, dndLambdaSchedule: [] }), 'spec.loss.spa.dnd_lambda'],
    ['negative λ', (s) => (s.loss = { dndLambdaSchedule: [0.5, -0.25] }), 'spec.loss.dnd_lambda_schedule[1]'],
    ['a λ schedule longer than the rounds', (s) => (s.loss = { dndLambdaSchedule: [0.5, 0.25, 0.125] }), 'spec.loss.dnd_lambda_schedule'],
    [
      'a λ schedule for spa-no-dnd',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_SPA_NO_DND;
        s.loss = { dndLambdaSchedule: [0.5] };
      },
      'spec.loss.dnd_lambda_schedule',
    ],
    [
      'SPA parameters for wdro',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO;
        s.loss = { spa: { window: 0, dndLambda: 0 }, dndLambdaSchedule: [], wdro: { delta: 0.01, radius: { $case: 'rho', value: 0.3 } } };
      },
      'spec.loss.spa',
    ],
    ['wdro without a budget', asConfig(Configuration.CONFIGURATION_WDRO), 'spec.loss.wdro'],
    [
      'wdro-sr with δ = 0.5',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO_SR;
        s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.5, radius: { $case: 'rho', value: 0.3 } } };
      },
      'spec.loss.wdro.delta',
    ],
    [
      'wdro with ρ = 1',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO;
        s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.01, radius: { $case: 'rho', value: 1 } } };
      },
      'spec.loss.wdro.rho',
    ],
    [
      'wdro with a negative ε',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO;
        s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.01, radius: { $case: 'epsilon', value: -1 } } };
      },
      'spec.loss.wdro.epsilon',
    ],
    [
      'wdro without a radius',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO;
        s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.01, radius: undefined } };
      },
      'spec.loss.wdro.radius',
    ],
    ['a budget for spa', (s) => (s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.01, radius: { $case: 'rho', value: 0.3 } } }), 'spec.loss.wdro'],
    [
      'cdpo label smoothing 0.5',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_CDPO;
        s.loss = { dndLambdaSchedule: [], labelSmoothing: 0.5 };
      },
      'spec.loss.label_smoothing',
    ],
    [
      'label smoothing for dpo-seed',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_DPO_SEED;
        s.loss = { dndLambdaSchedule: [], labelSmoothing: 0.1 };
      },
      'spec.loss.label_smoothing',
    ],
    [
      "Dr. DPO with β' = 0",
      (s) => {
        s.configuration = Configuration.CONFIGURATION_DRDPO;
        s.loss = { dndLambdaSchedule: [], drdpoBetaPrime: 0 };
      },
      'spec.loss.drdpo_beta_prime',
    ],
    // The per-round adversary (LossParams fields 7-8, docs/algorithm.md §7).
    [
      'an adversary schedule for spa',
      (s) => (s.loss = { dndLambdaSchedule: [], adversarySchedule: AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND }),
      'spec.loss.adversary_schedule',
    ],
    [
      'an unknown adversary schedule',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO;
        s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.01, radius: { $case: 'rho', value: 0.3 } }, adversarySchedule: 7 as AdversarySchedule };
      },
      'spec.loss.adversary_schedule',
    ],
    [
      'a group size per step',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO;
        s.loss = { dndLambdaSchedule: [], wdro: { delta: 0.01, radius: { $case: 'rho', value: 0.3 } }, adversaryGroupSize: 50 };
      },
      'spec.loss.adversary_group_size',
    ],
    [
      'a per-round group of one pair',
      (s) => {
        s.configuration = Configuration.CONFIGURATION_WDRO_SR;
        s.loss = {
          dndLambdaSchedule: [],
          wdro: { delta: 0.01, radius: { $case: 'rho', value: 0.3 } },
          adversarySchedule: AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND,
          adversaryGroupSize: 1,
        };
      },
      'spec.loss.adversary_group_size',
    ],
    ['no seed training', (s) => (s.seedTraining = undefined), 'spec.seed_training'],
    ['no round training', (s) => (s.roundTraining = undefined), 'spec.round_training'],
    ['learning rate 0', (s) => (s.seedTraining!.learningRate = 0), 'spec.seed_training.learning_rate'],
    ['batch size 0', (s) => (s.roundTraining!.batchSize = 0), 'spec.round_training.batch_size'],
    ['accumulation not dividing the batch', (s) => (s.seedTraining!.gradientAccumulationSteps = 3), 'spec.seed_training.gradient_accumulation_steps'],
    ['unknown scheduler', (s) => (s.seedTraining!.lrScheduler = 'exponential'), 'spec.seed_training.lr_scheduler'],
    ['warm-up ratio 1', (s) => (s.roundTraining!.warmupRatio = 1), 'spec.round_training.warmup_ratio'],
    ['negative weight decay', (s) => (s.seedTraining!.weightDecay = -1), 'spec.seed_training.weight_decay'],
    ['max_length 1', (s) => (s.seedTraining!.maxLength = 1), 'spec.seed_training.max_length'],
    ['a training seed', (s) => (s.seedTraining!.seed = 1), 'spec.seed_training.seed'],
    ['the implicit judge as evaluator', (s) => (s.evaluation!.evaluator = JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT), 'spec.evaluation.evaluator'],
    ['a RULE evaluator without a rule', (s) => (s.evaluation!.rule = ''), 'spec.evaluation.rule'],
    [
      'a reward-model evaluator without a model',
      (s) => {
        s.evaluation!.evaluator = JudgeMethod.JUDGE_METHOD_REWARD_MODEL;
        s.evaluation!.rule = '';
      },
      'spec.evaluation.reward_model',
    ],
    ['65 samples per prompt', (s) => (s.evaluation!.samplesPerPrompt = 65), 'spec.evaluation.samples_per_prompt'],
    ['n in the evaluation sampling', (s) => (s.evaluation!.generation = { n: 3, topK: 0, maxNewTokens: 0, stop: [], seed: 0, greedy: false }), 'spec.evaluation.generation.n'],
    ['65 generator shards', (s) => (s.sharding = { generatorShards: 65, judgeShards: 0 }), 'spec.sharding.generator_shards'],
    ['65 judge shards', (s) => (s.sharding = { generatorShards: 2, judgeShards: 65 }), 'spec.sharding.judge_shards'],
    // The self-annotation levers (RunSpec fields 19-23 and 32).
    ['a negative judge tie margin', (s) => (s.judgeTieMargin = -0.01), 'spec.judge_tie_margin'],
    ['a judge tie margin for dpo-seed', (s) => Object.assign(s, { configuration: Configuration.CONFIGURATION_DPO_SEED, judgeTieMargin: 0.1 }), 'spec.judge_tie_margin'],
    ['a frozen judge for dpo-seed', (s) => Object.assign(s, { configuration: Configuration.CONFIGURATION_DPO_SEED, frozenJudge: true }), 'spec.frozen_judge'],
    [
      'a frozen judge for iter-dpo-rm',
      (s) => Object.assign(s, { configuration: Configuration.CONFIGURATION_ITER_DPO_RM, judgeModel: judgeModel(), frozenJudge: true }),
      'spec.frozen_judge',
    ],
    ['a judge learning rate without a frozen judge', (s) => (s.judgeLearningRate = 2e-5), 'spec.judge_learning_rate'],
    ['a judge learning rate of 0', (s) => Object.assign(s, { frozenJudge: true, judgeLearningRate: 0 }), 'spec.judge_learning_rate'],
    ['a judge learning rate of 1', (s) => Object.assign(s, { frozenJudge: true, judgeLearningRate: 1 }), 'spec.judge_learning_rate'],
    ['a judge learning rate for dpo-seed', (s) => Object.assign(s, { configuration: Configuration.CONFIGURATION_DPO_SEED, judgeLearningRate: 2e-5 }), 'spec.judge_learning_rate'],
    ['a seed replay fraction above 1', (s) => (s.seedReplayFraction = 1.5), 'spec.seed_replay_fraction'],
    ['a NaN seed replay fraction', (s) => (s.seedReplayFraction = NaN), 'spec.seed_replay_fraction'],
    ['a confidence keep fraction of 0', (s) => (s.confidenceKeepFraction = 0), 'spec.confidence_keep_fraction'],
    ['a confidence keep fraction above 1', (s) => (s.confidenceKeepFraction = 1.01), 'spec.confidence_keep_fraction'],
    ['best-vs-worst pairing of two responses', (s) => (s.pairing = Pairing.PAIRING_BEST_WORST), 'spec.pairing'],
    [
      'best-vs-worst pairing for the LLM-as-judge',
      (s) => {
        Object.assign(s, { configuration: Configuration.CONFIGURATION_ITER_DPO_JUDGE, judgeModel: judgeModel(), pairing: Pairing.PAIRING_BEST_WORST });
        s.generation!.n = 4;
      },
      'spec.pairing',
    ],
    ['an unknown pairing', (s) => (s.pairing = 9 as Pairing), 'spec.pairing'],
  ];

  it.each(cases)('%s -> %s', async (_name, mutate, expected) => {
    expect(await fieldOf(mutate)).toBe(expected);
  });

  it('takes every self-annotation lever at once, and each at its default', async () => {
    const levers = { judgeTieMargin: 0.05, frozenJudge: true, judgeLearningRate: 2e-5, seedReplayFraction: 0.25, confidenceKeepFraction: 0.8, pairing: Pairing.PAIRING_BEST_WORST };
    expect(await fieldOf((s) => Object.assign(s, levers, { generation: { ...s.generation!, n: 4 } }))).toBe('valid');
    const defaults = { judgeTieMargin: 0, frozenJudge: false, seedReplayFraction: 0, confidenceKeepFraction: 1, pairing: Pairing.PAIRING_UNSPECIFIED };
    expect(await fieldOf((s) => Object.assign(s, defaults))).toBe('valid');
  });

  it('takes the per-round adversary for wdro and wdro-sr, with and without a group size', async () => {
    const wdro = { delta: 0.01, radius: { $case: 'rho' as const, value: 0.3 } };
    const perRound = AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND;
    for (const configuration of [Configuration.CONFIGURATION_WDRO, Configuration.CONFIGURATION_WDRO_SR]) {
      expect(await fieldOf((s) => Object.assign(s, { configuration, loss: { dndLambdaSchedule: [], wdro, adversarySchedule: perRound } }))).toBe('valid');
      expect(await fieldOf((s) => Object.assign(s, { configuration, loss: { dndLambdaSchedule: [], wdro, adversarySchedule: perRound, adversaryGroupSize: 2 } }))).toBe('valid');
      const perStep = AdversarySchedule.ADVERSARY_SCHEDULE_PER_STEP;
      expect(await fieldOf((s) => Object.assign(s, { configuration, loss: { dndLambdaSchedule: [], wdro, adversarySchedule: perStep } }))).toBe('valid');
    }
  });

  it('says which line of the seed pairs is broken', async () => {
    const notJson = await errorOf((s) => (s.seedPairs!.uri = path.join(ws.root, 'bad-json.jsonl')));
    expect(notJson.field).toBe('spec.seed_pairs.uri');
    expect(notJson.message).toContain('bad-json.jsonl:3: not valid JSON');
    const missing = await errorOf((s) => (s.seedPairs!.uri = path.join(ws.root, 'no-rejected.jsonl')));
    expect(missing.message).toContain('no-rejected.jsonl:2: "rejected" must be a non-empty string');
  });

  it("says the brief's example: spec.loss.wdro.delta with its range (0, 0.5)", async () => {
    const error = await errorOf((s) => {
      s.configuration = Configuration.CONFIGURATION_WDRO;
      s.loss = { dndLambdaSchedule: [], wdro: { delta: 0, radius: { $case: 'rho', value: 0.3 } } };
    });
    expect(error.field).toBe('spec.loss.wdro.delta');
    expect(error.message).toContain('spec.loss.wdro.delta: must be greater than 0 and less than 0.5, got 0');
  });
});
