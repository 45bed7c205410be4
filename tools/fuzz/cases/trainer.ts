/** alignment.v1.Trainer: StartJob's JobSpec field by field (a started job is cancelled at once), and the job-id RPCs. */
import { CancelJobRequest, GetJobRequest, ListJobsRequest, PreferenceLoss, StartJobRequest, TrainerService, WatchJobRequest } from '@alignment/contracts';
import type { CaseSpec, Fixtures } from '../model';
import { BAD_DOUBLES, BAD_ENUMS, BAD_PAGE_TOKENS, BAD_SHA256, EDGE_UINT32, NON_FINITE, UNKNOWN_IDS, badStrings, inputUris, outputUris, type Labelled } from '../values';
import { nested, varintField } from '../wire';
import { fieldCases, rawCase, rpcsOf, variant, type Lazy } from './build';

export const TRAINER_RPCS = rpcsOf('trainer', TrainerService);

/** The job_id of StartJob's first baseline (the other StartJob cases let the trainer name their jobs). */
export const STARTED_JOB_ID = 'fuzz-job-1';

const hparams = () => ({ learningRate: 1e-4, batchSize: 2, maxSteps: 1 });

/** A valid preference job: one W-DRO + self-refinement step on the tiny checkpoint (it is cancelled once started). */
export function validPreferenceJob(f: Fixtures): any {
  return {
    jobId: '',
    spec: {
      kind: {
        $case: 'preference',
        value: {
          init: { uri: f.models.checkpoint },
          pairs: { uri: f.valid.seedPairs },
          loss: PreferenceLoss.PREFERENCE_LOSS_WDRO_SR,
          beta: 0.1,
          spa: { alpha: 0.1, kPercentile: 10, warmupFraction: 0.2, dndLambda: 0.5 },
          wdro: { radius: { $case: 'rho', value: 0.25 }, delta: 0.01 },
        },
      },
      hparams: hparams(),
      outputUri: '',
      exportOnnx: false,
    },
  };
}

/** A valid SFT job from a small architecture with the tiny model's tokenizer. */
export function validSftJob(f: Fixtures): any {
  return {
    jobId: '',
    spec: {
      kind: {
        $case: 'sft',
        value: {
          init: { $case: 'architecture', value: { modelType: 'llama', hiddenSize: 16, numLayers: 1, numAttentionHeads: 2, intermediateSize: 32, tokenizer: { uri: f.models.policy } } },
          dataset: { uri: f.valid.sftData },
        },
      },
      hparams: hparams(),
    },
  };
}

const PREF = 'spec.kind.value';
const ARCH = 'spec.kind.value.init.value';

function startJobFamilies(f: Fixtures): Record<string, CaseSpec[]> {
  const pref = () => validPreferenceJob(f);
  const sft = () => validSftJob(f);
  const v = (base: () => any, name: string, expect: CaseSpec['expect'], edit: (r: any) => void) => variant(StartJobRequest, base, name, expect, edit);
  const prefDoubles = ['beta', 'spa.alpha', 'spa.kPercentile', 'spa.warmupFraction', 'spa.dndLambda', 'wdro.delta'].map((p) => `${PREF}.${p}`);
  const hpDoubles = ['learningRate', 'epochs', 'warmupRatio', 'weightDecay', 'maxGradNorm'].map((p) => `spec.hparams.${p}`);
  const archUints = ['hiddenSize', 'numLayers', 'numAttentionHeads', 'numKeyValueHeads', 'intermediateSize', 'maxPositionEmbeddings'].map((p) => `${ARCH}.${p}`);
  const hpUints = ['maxSteps', 'batchSize', 'gradientAccumulationSteps', 'maxLength', 'checkpointEverySteps'].map((p) => `spec.hparams.${p}`);
  // StartJob checks that a checkpoint directory holds a config.json; the job finds out whether it loads.
  const checkpointExpect = (label: string) => (label === 'fake-model-dir' ? 'any' : 'reject');
  const short = (name: string) => name.replace(`${PREF}.`, 'spec.preference.').replace(`${ARCH}.`, 'spec.sft.architecture.');
  const named = (cases: CaseSpec[]) => cases.map((c) => ({ ...c, name: short(c.name) }));
  return {
    // The one job with a known id: the job-id RPCs' `started-job` cases find it (once this case has run).
    baseline: [v(pref, 'baseline:valid-preference-wdro-sr', 'ok', (r) => (r.jobId = STARTED_JOB_ID)), v(sft, 'baseline:valid-sft-architecture', 'ok', () => undefined)],
    'non-finite': named([...fieldCases(StartJobRequest, pref, 'non-finite', [...prefDoubles, ...hpDoubles], NON_FINITE, 'reject')]),
    'odd-double': named(fieldCases(StartJobRequest, pref, 'odd-double', [...prefDoubles, 'spec.hparams.learningRate', 'spec.hparams.epochs'], BAD_DOUBLES.slice(3), 'any')),
    'edge-uint': named([
      ...fieldCases(StartJobRequest, sft, 'edge-uint', archUints, EDGE_UINT32, 'any'),
      ...fieldCases(StartJobRequest, pref, 'edge-uint', [...hpUints, `${PREF}.spa.window`], EDGE_UINT32, 'any'),
    ]),
    enum: named([
      ...fieldCases(StartJobRequest, pref, 'enum', [`${PREF}.loss`, `${PREF}.adversarySchedule`], BAD_ENUMS, 'reject'),
      v(pref, 'enum:spec.preference.adversary_group_size=0', 'reject', (r) => {
        r.spec.kind.value.adversarySchedule = 2;
        r.spec.kind.value.adversaryGroupSize = 0;
      }),
      v(pref, 'enum:spec.preference.adversary_group_size=2^32-1', 'any', (r) => {
        r.spec.kind.value.adversarySchedule = 2;
        r.spec.kind.value.adversaryGroupSize = 2 ** 32 - 1;
      }),
    ]),
    string: named([
      ...fieldCases<any, string>(StartJobRequest, pref, 'string', ['jobId'], [...badStrings(), ...UNKNOWN_IDS], 'any'),
      ...fieldCases<any, string>(StartJobRequest, sft, 'string', [`${ARCH}.modelType`], badStrings(), 'reject'),
      ...fieldCases<any, string>(StartJobRequest, pref, 'string', ['spec.hparams.lrScheduler'], badStrings(), 'reject'),
      ...fieldCases<any, string>(StartJobRequest, pref, 'string', [`${PREF}.droSolverAddress`], [...badStrings(), ['port-1', '127.0.0.1:1'], ['port-99999', 'localhost:99999']], 'any'),
    ]).map((c) => ({ ...c, name: c.name.replace('jobId', 'job_id') })),
    path: [
      ...inputUris(f).map(([label, uri]) => v(pref, `path:spec.preference.init.uri=${label}`, checkpointExpect(label), (r) => (r.spec.kind.value.init.uri = uri))),
      ...inputUris(f).map(([label, uri]) => v(pref, `path:spec.preference.reference.uri=${label}`, checkpointExpect(label), (r) => (r.spec.kind.value.reference = { uri }))),
      ...inputUris(f).map(([label, uri]) => v(pref, `path:spec.preference.pairs.uri=${label}`, 'any', (r) => (r.spec.kind.value.pairs.uri = uri))),
      ...inputUris(f).map(([label, uri]) => v(sft, `path:spec.sft.dataset.uri=${label}`, 'any', (r) => (r.spec.kind.value.dataset.uri = uri))),
      ...inputUris(f).map(([label, uri]) => v(sft, `path:spec.sft.architecture.tokenizer.uri=${label}`, 'any', (r) => (r.spec.kind.value.init.value.tokenizer.uri = uri))),
      ...inputUris(f).map(([label, uri]) => v(sft, `path:spec.sft.checkpoint.uri=${label}`, checkpointExpect(label), (r) => (r.spec.kind.value.init = { $case: 'checkpoint', value: { uri } }))),
      ...outputUris(f).map(([label, uri]) => v(pref, `path:spec.output_uri=${label}`, 'any', (r) => (r.spec.outputUri = uri))),
    ],
    // A digest of the right form is checked when the job reads the file (the job FAILS), not by StartJob.
    sha256: named(fieldCases(StartJobRequest, pref, 'sha256', [`${PREF}.pairs.sha256`, `${PREF}.init.sha256`], BAD_SHA256, (l) => (l === 'wrong-digest' ? 'any' : 'reject'))),
    missing: [
      v(pref, 'missing:spec', 'reject', (r) => delete r.spec),
      v(pref, 'missing:spec.kind', 'reject', (r) => delete r.spec.kind),
      v(pref, 'missing:spec.hparams', 'reject', (r) => delete r.spec.hparams),
      v(pref, 'missing:spec.preference.wdro', 'reject', (r) => delete r.spec.kind.value.wdro),
      v(pref, 'missing:spec.preference.wdro.radius', 'reject', (r) => delete r.spec.kind.value.wdro.radius),
      v(sft, 'missing:spec.sft.init', 'reject', (r) => delete r.spec.kind.value.init),
      v(sft, 'missing:spec.sft.architecture.tokenizer', 'reject', (r) => delete r.spec.kind.value.init.value.tokenizer),
    ],
    'wire-range': [
      rawCase('wire-range:spec.hparams.seed=2^64-1', 'any', () => nested([1, 3], varintField(11, 2n ** 64n - 1n))),
      rawCase('wire-range:spec.preference.pairs.size_bytes=-1', 'reject', () => nested([1, 2, 3], varintField(3, -1))),
      rawCase('wire-range:spec.hparams.max_steps=2^40', 'any', () => nested([1, 3], varintField(3, 2n ** 40n))),
    ],
  };
}

const jobIds = (): Labelled<Lazy<string>>[] => [['empty', ''], ['started-job', STARTED_JOB_ID], ...badStrings(), ...UNKNOWN_IDS];

function jobIdFamilies(codec: any): Record<string, CaseSpec[]> {
  return {
    job_id: fieldCases<any, string>(codec, () => ({}), 'string', ['jobId'], jobIds(), (label) => (label === 'empty' ? 'reject' : 'any')).map((c) => ({
      ...c,
      name: c.name.replace('jobId', 'job_id'),
    })),
  };
}

export function trainerFamilies(f: Fixtures): Record<string, Record<string, CaseSpec[]>> {
  return {
    StartJob: startJobFamilies(f),
    WatchJob: jobIdFamilies(WatchJobRequest),
    GetJob: jobIdFamilies(GetJobRequest),
    ListJobs: {
      page: [
        ...fieldCases<any, number>(ListJobsRequest, () => ({}), 'edge-uint', ['pageSize'], EDGE_UINT32, 'reject').map((c) => ({ ...c, name: c.name.replace('pageSize', 'page_size') })),
        ...fieldCases<any, string>(ListJobsRequest, () => ({}), 'string', ['pageToken'], [...BAD_PAGE_TOKENS, ...badStrings()], 'any').map((c) => ({
          ...c,
          name: c.name.replace('pageToken', 'page_token'),
        })),
      ],
    },
    CancelJob: jobIdFamilies(CancelJobRequest),
  };
}
