/** alignment.v1.Generator (Generate) and alignment.v1.Judge (ScoreSequences, JudgePairs), on the tiny real models. */
import { GenerateRequest, GeneratorService, JudgeMethod, JudgePairsRequest, JudgeService, ScoreSequencesRequest } from '@alignment/contracts';
import type { CaseSpec, Fixtures } from '../model';
import { BAD_DOUBLES, BAD_ENUMS, BAD_SHA256, EDGE_UINT32, MIB, NON_FINITE, badStrings, inputUris, outputUris } from '../values';
import { nested, varintField } from '../wire';
import { fieldCases, rawCase, rpcsOf, variant } from './build';

export const GENERATOR_RPCS = rpcsOf('generator', GeneratorService);
export const JUDGE_RPCS = rpcsOf('judge', JudgeService);

const model = (dir: string) => ({ onnx: { uri: dir } });
const PROMPTS = ['What is 2 + 3?', 'Name a colour.'];

/** A valid Generate: two inline prompts, two samples of 8 tokens each from the tiny policy. */
export function validGenerate(f: Fixtures): any {
  return { model: model(f.models.policy), prompts: { $case: 'inlinePrompts', value: { prompts: [...PROMPTS] } }, params: { n: 2, maxNewTokens: 8, seed: 1 }, outputUri: '' };
}

function generateFamilies(f: Fixtures): Record<string, CaseSpec[]> {
  const base = () => validGenerate(f);
  const v = (name: string, expect: CaseSpec['expect'], edit: (r: any) => void) => variant(GenerateRequest, base, name, expect, edit);
  const promptSet = (uri: string) => (r: any) => (r.prompts = { $case: 'promptSet', value: { uri } });
  return {
    baseline: [
      v('baseline:valid-inline', 'ok', () => undefined),
      v('baseline:valid-prompt-set', 'ok', promptSet(f.valid.prompts)),
    ],
    'non-finite': fieldCases(GenerateRequest, base, 'non-finite', ['params.temperature', 'params.topP'], NON_FINITE, 'reject'),
    'odd-double': fieldCases(GenerateRequest, base, 'odd-double', ['params.temperature', 'params.topP'], BAD_DOUBLES.slice(3), 'any'),
    'edge-uint': fieldCases(GenerateRequest, base, 'edge-uint', ['params.n', 'params.maxNewTokens', 'params.topK', 'shard.index', 'shard.count'], EDGE_UINT32, 'any'),
    path: [
      ...inputUris(f).map(([label, uri]) => v(`path:model.onnx.uri=${label}`, 'reject', (r) => (r.model.onnx.uri = uri))),
      ...inputUris(f).map(([label, uri]) => v(`path:prompt_set.uri=${label}`, 'reject', promptSet(uri))),
      ...outputUris(f).map(([label, uri]) => v(`path:output_uri=${label}`, 'any', (r) => (r.outputUri = uri))),
    ],
    sha256: [
      ...fieldCases(GenerateRequest, base, 'sha256', ['model.onnx.sha256'], BAD_SHA256, 'reject'),
      ...BAD_SHA256.map(([label, sha]) => v(`sha256:prompt_set.sha256=${label}`, 'reject', (r) => (r.prompts = { $case: 'promptSet', value: { uri: f.valid.prompts, sha256: sha() } }))),
    ],
    string: [
      ...badStrings().map(([label, make]) => v(`string:inline_prompts.prompts[0]=${label}`, 'any', (r) => (r.prompts.value.prompts[0] = make()))),
      v('string:inline_prompts.prompts[0]=empty', 'reject', (r) => (r.prompts.value.prompts[0] = '')),
      ...badStrings().map(([label, make]) => v(`string:params.stop[0]=${label}`, 'any', (r) => (r.params.stop = [make()]))),
      v('string:params.stop[0]=empty', 'reject', (r) => (r.params.stop = [''])),
    ],
    missing: [
      v('missing:model', 'reject', (r) => delete r.model),
      v('missing:prompts', 'reject', (r) => delete r.prompts),
      v('missing:inline_prompts.prompts', 'reject', (r) => (r.prompts.value.prompts = [])),
      v('missing:params', 'any', (r) => delete r.params),
    ],
    repeated: [
      v('repeated:inline_prompts.prompts=1e5-last-empty', 'reject', (r) => (r.prompts.value.prompts = [...new Array(99_999).fill('x'), ''])),
      v('repeated:inline_prompts.prompts=1e5-missing-model', 'reject', (r) => {
        r.prompts.value.prompts = new Array(100_000).fill('What is 1 + 1?');
        r.model.onnx.uri = '/nonexistent/model';
      }),
      v('repeated:inline_prompts.prompts=1e5-shard-of-one', 'any', (r) => {
        r.prompts.value.prompts = new Array(100_000).fill('What is 1 + 1?');
        r.shard = { index: 0, count: 100_000 };
      }),
      v('repeated:params.stop=1e5', 'any', (r) => (r.params.stop = new Array(100_000).fill('zz'))),
      v('repeated:inline_prompts.prompts[0]=over-MAX_TEXT_BYTES', 'reject', (r) => (r.prompts.value.prompts[0] = 'p'.repeat(MIB))),
    ],
    'wire-range': [
      rawCase('wire-range:params.seed=2^64-1', 'reject', () => nested([4], varintField(7, 2n ** 64n - 1n))),
      rawCase('wire-range:params.n=2^40', 'any', () => nested([4], varintField(1, 2n ** 40n))),
    ],
  };
}

const ITEM = { prompt: 'What is 2 + 3?', response: '5' };

export function validScoreSequences(f: Fixtures): any {
  return { model: model(f.models.policy), items: [{ ...ITEM }, { prompt: 'Name a colour.', response: 'Blue.' }], perToken: true };
}

function scoreFamilies(f: Fixtures): Record<string, CaseSpec[]> {
  const base = () => validScoreSequences(f);
  const v = (name: string, expect: CaseSpec['expect'], edit: (r: any) => void) => variant(ScoreSequencesRequest, base, name, expect, edit);
  return {
    baseline: [v('baseline:valid', 'ok', () => undefined)],
    path: inputUris(f).map(([label, uri]) => v(`path:model.onnx.uri=${label}`, 'reject', (r) => (r.model.onnx.uri = uri))),
    sha256: fieldCases(ScoreSequencesRequest, base, 'sha256', ['model.onnx.sha256'], BAD_SHA256, 'reject'),
    string: [
      ...badStrings().map(([label, make]) => v(`string:items[0].prompt=${label}`, 'any', (r) => (r.items[0].prompt = make()))),
      ...badStrings().map(([label, make]) => v(`string:items[0].response=${label}`, 'any', (r) => (r.items[0].response = make()))),
      v('string:items[0]=both-empty', 'any', (r) => (r.items[0] = { prompt: '', response: '' })),
    ],
    missing: [v('missing:model', 'reject', (r) => delete r.model), v('missing:items', 'any', (r) => (r.items = []))],
    repeated: [
      v('repeated:items=1e5-empty-responses', 'any', (r) => (r.items = new Array(100_000).fill({ prompt: '', response: '' }))),
      v('repeated:items=1e5-missing-model', 'reject', (r) => {
        r.items = new Array(100_000).fill(ITEM);
        r.model.onnx.uri = '/nonexistent/model';
      }),
      v('repeated:items[0].response=over-MAX_TEXT_BYTES', 'reject', (r) => (r.items[0].response = 'r'.repeat(MIB))),
      v('repeated:items=5000-long-responses', 'any', (r) => (r.items = new Array(5_000).fill({ prompt: 'q', response: 'word '.repeat(400) }))),
    ],
  };
}

/** A valid JudgePairs by a rule (no model needed), on the fixture's responses. */
export function validJudgePairs(f: Fixtures): any {
  return { method: JudgeMethod.JUDGE_METHOD_RULE, responses: { uri: f.valid.responses }, rule: { rule: 'toyworld/arithmetic', tieTolerance: 0 }, outputUri: '' };
}

/** A valid JudgePairs by SPA's implicit reward (the tiny policy against the tiny reference). */
export function validSpaJudgePairs(f: Fixtures): any {
  return {
    method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
    responses: { uri: f.valid.responses },
    spaImplicit: { policy: model(f.models.policy), reference: model(f.models.reference), beta: 0.1, tieTolerance: 0, lengthPenalty: 0 },
    outputUri: '',
  };
}

function judgePairsFamilies(f: Fixtures): Record<string, CaseSpec[]> {
  const rule = () => validJudgePairs(f);
  const spa = () => validSpaJudgePairs(f);
  const v = (base: () => any, name: string, expect: CaseSpec['expect'], edit: (r: any) => void) => variant(JudgePairsRequest, base, name, expect, edit);
  const SPA_DOUBLES = ['spaImplicit.beta', 'spaImplicit.tieTolerance', 'spaImplicit.lengthPenalty', 'unfinishedPenalty'];
  return {
    baseline: [
      v(rule, 'baseline:valid-rule', 'ok', () => undefined),
      v(spa, 'baseline:valid-spa-implicit', 'ok', () => undefined),
      v(rule, 'baseline:valid-reward-model', 'ok', (r) => {
        r.method = JudgeMethod.JUDGE_METHOD_REWARD_MODEL;
        delete r.rule;
        r.rewardModel = { rewardModel: model(f.models.reward), tieTolerance: 0 };
      }),
    ],
    'non-finite': [
      ...fieldCases(JudgePairsRequest, spa, 'non-finite', SPA_DOUBLES, NON_FINITE, 'reject'),
      ...fieldCases(JudgePairsRequest, rule, 'non-finite', ['rule.tieTolerance'], NON_FINITE, 'reject'),
    ],
    'odd-double': fieldCases(JudgePairsRequest, spa, 'odd-double', SPA_DOUBLES, BAD_DOUBLES.slice(3), 'any'),
    enum: [
      ...fieldCases(JudgePairsRequest, rule, 'enum', ['method', 'pairing', 'unfinishedPairs'], BAD_ENUMS, 'reject'),
      v(rule, 'enum:method=LLM_AS_JUDGE-with-rule-config', 'reject', (r) => (r.method = JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE)),
      v(rule, 'enum:pairing=BEST_WORST-two-responses', 'any', (r) => (r.pairing = 1)),
    ],
    'edge-uint': fieldCases(JudgePairsRequest, rule, 'edge-uint', ['shard.index', 'shard.count'], EDGE_UINT32, 'any'),
    path: [
      // An empty responses file has no pairs to label: an empty pairs artifact, as a shard with no prompts gives.
      ...inputUris(f).map(([label, uri]) => v(rule, `path:responses.uri=${label}`, label === 'empty-file' ? 'any' : 'reject', (r) => (r.responses.uri = uri))),
      ...inputUris(f).map(([label, uri]) => v(spa, `path:spa_implicit.policy.onnx.uri=${label}`, 'reject', (r) => (r.spaImplicit.policy.onnx.uri = uri))),
      ...inputUris(f).map(([label, uri]) => v(spa, `path:spa_implicit.reference.onnx.uri=${label}`, 'reject', (r) => (r.spaImplicit.reference.onnx.uri = uri))),
      ...outputUris(f).map(([label, uri]) => v(rule, `path:output_uri=${label}`, 'any', (r) => (r.outputUri = uri))),
    ],
    sha256: fieldCases(JudgePairsRequest, rule, 'sha256', ['responses.sha256'], BAD_SHA256, 'reject'),
    string: [
      ...badStrings().map(([label, make]) => v(rule, `string:rule.rule=${label}`, 'reject', (r) => (r.rule.rule = make()))),
      v(rule, 'string:rule.rule=unknown', 'reject', (r) => (r.rule.rule = 'toyworld/nonexistent')),
    ],
    missing: [
      v(rule, 'missing:responses', 'reject', (r) => delete r.responses),
      v(rule, 'missing:rule', 'reject', (r) => delete r.rule),
      v(spa, 'missing:spa_implicit.reference', 'reject', (r) => delete r.spaImplicit.reference),
      v(rule, 'missing:method', 'reject', (r) => (r.method = 0)),
      v(rule, 'missing:two-configs', 'reject', (r) => (r.spaImplicit = validSpaJudgePairs(f).spaImplicit)),
    ],
  };
}

export function generatorFamilies(f: Fixtures): Record<string, Record<string, CaseSpec[]>> {
  return { Generate: generateFamilies(f) };
}

export function judgeFamilies(f: Fixtures): Record<string, Record<string, CaseSpec[]>> {
  return { ScoreSequences: scoreFamilies(f), JudgePairs: judgePairsFamilies(f) };
}
