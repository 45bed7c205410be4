/** alignment.v1.Coordinator: StartRun's RunSpec field by field, and the run-id and paging RPCs. */
import {
  CancelRunRequest,
  Configuration,
  DeleteRunRequest,
  CoordinatorService,
  GetRunRequest,
  JudgeMethod,
  ListRunsRequest,
  StartRunRequest,
  WatchRunRequest,
} from '@alignment/contracts';
import type { CaseSpec, Fixtures } from '../model';
import { BAD_DOUBLES, BAD_ENUMS, BAD_PAGE_TOKENS, BAD_SHA256, EDGE_UINT32, NON_FINITE, UNKNOWN_IDS, badStrings, inputUris, type Labelled } from '../values';
import { nested, varintField } from '../wire';
import { fieldCases, rawCase, rpcsOf, variant, type Lazy } from './build';

export const COORDINATOR_RPCS = rpcsOf('coordinator', CoordinatorService);

const ref = (uri: string) => ({ uri });
/** The run_id of StartRun's first baseline (the other StartRun cases let the coordinator name their runs). */
export const STARTED_RUN_ID = 'fuzz-run-1';
const hparams = { learningRate: 1e-4, batchSize: 2, maxSteps: 1 };

/**
 * The valid request the StartRun cases vary: wdro-sr (it uses self-refinement, the noise-detection schedule and the
 * adversary, so every loss field is checked), one round of prompts, an evaluation by a rule. Fresh on every call.
 */
export function validStartRun(f: Fixtures): any {
  return {
    runId: '',
    spec: {
      name: 'fuzz',
      baseModel: { hfCheckpoint: ref(f.models.checkpoint), onnx: ref(f.models.policy) },
      seedPairs: ref(f.valid.seedPairs),
      prompts: { $case: 'roundPrompts', value: { rounds: [ref(f.valid.roundPrompts[0])] } },
      rounds: 1,
      generation: { n: 2, maxNewTokens: 8, temperature: 0.7, topP: 1 },
      configuration: Configuration.CONFIGURATION_WDRO_SR,
      loss: { beta: 0.1, spa: { alpha: 0.1, kPercentile: 10, warmupFraction: 0.2 }, dndLambdaSchedule: [0.5], wdro: { radius: { $case: 'rho', value: 0.25 }, delta: 0.01 } },
      seedTraining: { ...hparams },
      roundTraining: { ...hparams },
      evaluation: { prompts: ref(f.valid.evalPrompts), evaluator: JudgeMethod.JUDGE_METHOD_RULE, rule: 'toyworld/arithmetic', samplesPerPrompt: 1, generation: { maxNewTokens: 8 } },
      seed: 1,
    },
  };
}

const DOUBLE_FIELDS = [
  'spec.label_noise_rate:labelNoiseRate',
  'spec.loss.beta:loss.beta',
  'spec.loss.spa.alpha:loss.spa.alpha',
  'spec.loss.spa.k_percentile:loss.spa.kPercentile',
  'spec.loss.spa.warmup_fraction:loss.spa.warmupFraction',
  'spec.loss.wdro.delta:loss.wdro.delta',
  'spec.generation.temperature:generation.temperature',
  'spec.generation.top_p:generation.topP',
  'spec.seed_training.learning_rate:seedTraining.learningRate',
  'spec.seed_training.epochs:seedTraining.epochs',
  'spec.seed_training.warmup_ratio:seedTraining.warmupRatio',
  'spec.round_training.weight_decay:roundTraining.weightDecay',
  'spec.round_training.max_grad_norm:roundTraining.maxGradNorm',
  'spec.judge_tie_margin:judgeTieMargin',
  'spec.seed_replay_fraction:seedReplayFraction',
  'spec.confidence_keep_fraction:confidenceKeepFraction',
  'spec.unfinished_penalty:unfinishedPenalty',
  'spec.evaluation.generation.temperature:evaluation.generation.temperature',
];

const UINT_FIELDS = [
  'spec.rounds:rounds',
  'spec.generation.n:generation.n',
  'spec.generation.max_new_tokens:generation.maxNewTokens',
  'spec.generation.top_k:generation.topK',
  'spec.sharding.generator_shards:sharding.generatorShards',
  'spec.sharding.judge_shards:sharding.judgeShards',
  'spec.evaluation.samples_per_prompt:evaluation.samplesPerPrompt',
  'spec.seed_training.batch_size:seedTraining.batchSize',
  'spec.seed_training.max_length:seedTraining.maxLength',
  'spec.round_training.gradient_accumulation_steps:roundTraining.gradientAccumulationSteps',
  'spec.loss.spa.window:loss.spa.window',
  'spec.loss.adversary_group_size:loss.adversaryGroupSize',
];

const ENUM_FIELDS = ['spec.configuration:configuration', 'spec.judge_method:judgeMethod', 'spec.evaluation.evaluator:evaluation.evaluator', 'spec.loss.adversary_schedule:loss.adversarySchedule', 'spec.pairing:pairing', 'spec.unfinished_pairs:unfinishedPairs'];

const URI_FIELDS = ['spec.base_model.hf_checkpoint.uri:baseModel.hfCheckpoint.uri', 'spec.base_model.onnx.uri:baseModel.onnx.uri', 'spec.seed_pairs.uri:seedPairs.uri', 'spec.evaluation.prompts.uri:evaluation.prompts.uri'];

/** `proto.path:tsProtoPath` pairs → cases named by the proto path, set at `spec.` + the ts-proto path. */
function specFieldCases<V>(
  base: () => any,
  family: string,
  fields: string[],
  values: readonly Labelled<Lazy<V>>[],
  expect: CaseSpec['expect'] | ((label: string) => CaseSpec['expect']),
): CaseSpec[] {
  return fields.flatMap((entry) => {
    const [protoPath, tsPath] = entry.split(':');
    return fieldCases<any, V>(StartRunRequest, base, family, [`spec.${tsPath}`], values, expect).map((c) => ({ ...c, name: c.name.replace(`spec.${tsPath}`, protoPath) }));
  });
}

function startRunFamilies(f: Fixtures): Record<string, CaseSpec[]> {
  const base = () => validStartRun(f);
  const v = (name: string, expect: CaseSpec['expect'], edit: (r: any) => void) => variant(StartRunRequest, base, name, expect, edit);
  const roundUri = (label: string, uri: string) => v(`path:spec.round_prompts.rounds[0].uri=${label}`, 'any', (r) => (r.spec.prompts.value.rounds[0].uri = uri));
  const splitUri = (label: string, uri: string) =>
    v(`path:spec.prompt_split.prompts.uri=${label}`, 'any', (r) => (r.spec.prompts = { $case: 'promptSplit', value: { prompts: ref(uri) } }));
  return {
    baseline: [
      // The one run with a known id: the run-id RPCs' `started-run` cases find it (once this case has run).
      v('baseline:valid-wdro-sr-run', 'ok', (r) => (r.runId = STARTED_RUN_ID)),
      v('baseline:valid-dpo-seed-run', 'ok', (r) => {
        r.spec.configuration = Configuration.CONFIGURATION_DPO_SEED;
        r.spec.rounds = 0;
        delete r.spec.prompts;
        delete r.spec.roundTraining;
        delete r.spec.generation;
        r.spec.loss = { beta: 0.1 };
      }),
    ],
    'non-finite': specFieldCases(base, 'non-finite', DOUBLE_FIELDS, NON_FINITE, 'reject'),
    'odd-double': specFieldCases(base, 'odd-double', DOUBLE_FIELDS, BAD_DOUBLES.slice(3), 'any'),
    'edge-uint': specFieldCases(base, 'edge-uint', UINT_FIELDS, EDGE_UINT32, 'any'),
    enum: specFieldCases(base, 'enum', ENUM_FIELDS, BAD_ENUMS, 'reject'),
    string: [
      ...specFieldCases(base, 'string', ['spec.name:name'], badStrings(), 'any'),
      ...specFieldCases(base, 'string', ['spec.judge_rule:judgeRule'], badStrings(), 'reject'),
      ...specFieldCases(base, 'string', ['spec.evaluation.rule:evaluation.rule'], badStrings(), 'any'),
      ...fieldCases<any, string>(StartRunRequest, base, 'string', ['runId'], [...badStrings(), ...UNKNOWN_IDS], 'any').map((c) => ({
        ...c,
        name: c.name.replace('runId', 'run_id'),
      })),
    ],
    path: [
      ...specFieldCases(base, 'path', URI_FIELDS, inputUris(f), 'any'),
      ...inputUris(f).map(([label, uri]) => roundUri(label, uri)),
      ...inputUris(f).map(([label, uri]) => splitUri(label, uri)),
    ],
    sha256: specFieldCases(base, 'sha256', ['spec.seed_pairs.sha256:seedPairs.sha256', 'spec.base_model.onnx.sha256:baseModel.onnx.sha256'], BAD_SHA256, 'reject'),
    missing: [
      v('missing:spec', 'reject', (r) => delete r.spec),
      v('missing:spec.base_model', 'reject', (r) => delete r.spec.baseModel),
      v('missing:spec.seed_pairs', 'reject', (r) => delete r.spec.seedPairs),
      v('missing:spec.prompts', 'reject', (r) => delete r.spec.prompts),
      v('missing:spec.loss.wdro', 'reject', (r) => delete r.spec.loss.wdro),
      v('missing:spec.seed_training', 'reject', (r) => delete r.spec.seedTraining),
      v('missing:spec.evaluation.generation', 'any', (r) => delete r.spec.evaluation.generation),
    ],
    repeated: [
      v('repeated:spec.loss.dnd_lambda_schedule=1e6', 'reject', (r) => (r.spec.loss.dndLambdaSchedule = new Array(1_000_000).fill(0.5))),
      v('repeated:spec.generation.stop=1e5', 'any', (r) => (r.spec.generation.stop = new Array(100_000).fill('stop'))),
      v('repeated:spec.generation.stop=1MiB-string', 'any', (r) => (r.spec.generation.stop = ['s'.repeat(1024 * 1024)])),
      v('repeated:spec.round_prompts.rounds=10000', 'reject', (r) => (r.spec.prompts.value.rounds = new Array(10_000).fill(ref(f.valid.roundPrompts[0])))),
      v('repeated:spec.prompt_split.round_fractions=1e6', 'reject', (r) => (r.spec.prompts = { $case: 'promptSplit', value: { prompts: ref(f.valid.prompts), roundFractions: new Array(1_000_000).fill(1e-6) } })),
      v('repeated:spec.round_prompts.rounds=same-file-twice', 'reject', (r) => {
        r.spec.rounds = 2;
        r.spec.prompts.value.rounds = [ref(f.valid.roundPrompts[0]), ref(f.valid.roundPrompts[0])];
        r.spec.loss.dndLambdaSchedule = [0.5, 0.25];
      }),
    ],
    'wire-range': [
      rawCase('wire-range:spec.seed=2^64-1', 'reject', () => nested([1], varintField(16, 2n ** 64n - 1n))),
      rawCase('wire-range:spec.seed_pairs.size_bytes=2^63-1', 'reject', () => nested([1, 3], varintField(3, 2n ** 63n - 1n))),
      rawCase('wire-range:spec.seed_pairs.size_bytes=-2^63', 'reject', () => nested([1, 3], varintField(3, -(2n ** 63n)))),
      rawCase('wire-range:spec.generation.seed=2^64-1', 'reject', () => nested([1, 7], varintField(7, 2n ** 64n - 1n))),
      rawCase('wire-range:spec.rounds=2^40', 'any', () => nested([1], varintField(6, 2n ** 40n))),
    ],
  };
}

const runIds = (): Labelled<Lazy<string>>[] => [['empty', ''], ['started-run', STARTED_RUN_ID], ...badStrings(), ...UNKNOWN_IDS];

function runIdFamilies(codec: any, field: string): Record<string, CaseSpec[]> {
  return {
    run_id: fieldCases<any, string>(codec, () => ({}), 'string', [field], runIds(), (label) => (label === 'empty' ? 'reject' : 'any')).map((c) => ({
      ...c,
      name: c.name.replace(field, 'run_id'),
    })),
  };
}

export function coordinatorFamilies(f: Fixtures): Record<string, Record<string, CaseSpec[]>> {
  return {
    StartRun: startRunFamilies(f),
    GetRun: runIdFamilies(GetRunRequest, 'runId'),
    ListRuns: {
      page: [
        ...fieldCases<any, number>(ListRunsRequest, () => ({}), 'edge-uint', ['pageSize'], EDGE_UINT32, 'reject').map((c) => ({ ...c, name: c.name.replace('pageSize', 'page_size') })),
        ...fieldCases<any, string>(ListRunsRequest, () => ({}), 'string', ['pageToken'], [...BAD_PAGE_TOKENS, ...badStrings()], 'any').map((c) => ({
          ...c,
          name: c.name.replace('pageToken', 'page_token'),
        })),
      ],
    },
    WatchRun: runIdFamilies(WatchRunRequest, 'runId'),
    CancelRun: runIdFamilies(CancelRunRequest, 'runId'),
    DeleteRun: runIdFamilies(DeleteRunRequest, 'runId'),
  };
}
