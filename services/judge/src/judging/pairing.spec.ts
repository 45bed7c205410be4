// Best-vs-worst pairing (judge.proto JudgePairsRequest.pairing; docs/algorithm.md §7): with n responses of known
// scores the labelled pair is (max, min). The `length/shorter` rule gives known scores, so no model is loaded.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactStore, isBlank, readJsonl } from '@alignment/artifacts';
import { checkRecord, JudgePairsRequest, Pairing } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { causalModelCache, ModelCache, RewardModel } from '@alignment/lm';
import { toJudgeJob } from '../service';
import { judgePairs, type JudgeDeps, type JudgeJob, type LabelledPair } from './judge-pairs';
import { responsesToScore, selectPair } from './pairing';

let dir: string;
let deps: JudgeDeps;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pairing-'));
  deps = {
    languageModels: causalModelCache(1),
    rewardModels: new ModelCache((d) => RewardModel.load(d), 1),
    store: new ArtifactStore(path.join(dir, 'store')),
  };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function ruleJob(records: Array<{ prompt: string; responses: string[] }>, pairing?: JudgeJob['pairing'], tieTolerance = 0): JudgeJob {
  const file = path.join(dir, 'responses.jsonl');
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  return { method: 'rule', responses: { uri: file, sha256 }, rule: { rule: 'length/shorter', tieTolerance }, outputUri: '', pairing };
}

async function pairsOf(file: string): Promise<LabelledPair[]> {
  const out: LabelledPair[] = [];
  for await (const { value } of readJsonl(file)) out.push(checkRecord<LabelledPair>('LabelledPair', value)); // formats.proto
  return out;
}

describe('JudgePairs with pairing best_worst', () => {
  // length/shorter scores −(characters): 'four' −4, 'sixsix' −6, 'to' −2, 'eighteen' −8.
  const responses = ['four', 'sixsix', 'to', 'eighteen'];

  it('labels the highest-scored response against the lowest-scored one', async () => {
    const outcome = await judgePairs(ruleJob([{ prompt: 'p', responses }], 'best_worst'), deps);
    expect(await pairsOf(outcome.pairs.path)).toEqual([
      { prompt_index: 0, prompt: 'p', chosen: 'to', rejected: 'eighteen', chosen_score: -2, rejected_score: -8, margin: 6, method: 'rule' },
    ]);
    expect(outcome.counts).toEqual({ numPrompts: 1, numPairs: 1, droppedIdentical: 0, droppedTies: 0, droppedInvalid: 0 });
  });

  it('keeps the first-two pairing by default', async () => {
    const [pair] = await pairsOf((await judgePairs(ruleJob([{ prompt: 'p', responses }]), deps)).pairs.path);
    expect(pair).toMatchObject({ chosen: 'four', rejected: 'sixsix', margin: 2 });
  });

  it('ignores empty and repeated responses, and applies the tie tolerance to max − min', async () => {
    const records = [
      { prompt: 'p', responses: ['', 'same', 'same', 'to'] },
      { prompt: 'q', responses: ['same', '', 'same'] },
      { prompt: 'r', responses: ['only', ' '] },
      { prompt: 's', responses: ['abc', 'xyz', 'abcd'] },
    ];
    const outcome = await judgePairs(ruleJob(records, 'best_worst', 1.5), deps);
    expect((await pairsOf(outcome.pairs.path)).map((p) => [p.chosen, p.rejected])).toEqual([['to', 'same']]);
    expect(outcome.counts).toEqual({ numPrompts: 4, numPairs: 1, droppedIdentical: 1, droppedTies: 1, droppedInvalid: 1 });
  });

  it('is refused for llm_as_judge, whose scores compare exactly two responses', async () => {
    const job: JudgeJob = { ...ruleJob([{ prompt: 'p', responses }], 'best_worst'), method: 'llm_as_judge', rule: undefined, llmAsJudge: { tieTolerance: 0 } };
    const error = await judgePairs(job, deps).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('pairing');
  });
});

describe('pairing', () => {
  it('first_two scores the first two responses; best_worst every distinct non-empty one', () => {
    expect(responsesToScore(['a', 'b', 'c'], 'first_two')).toEqual(['a', 'b']);
    expect(responsesToScore(['a', ''], 'first_two')).toBe('invalid');
    expect(responsesToScore(['a', 'a', 'b'], 'first_two')).toBe('identical');
    expect(responsesToScore(['a', 'a', '', 'b', 'a'], 'best_worst')).toEqual(['a', 'b']);
    expect(responsesToScore(['a', 'a', ''], 'best_worst')).toBe('identical');
    expect(responsesToScore(['a', ''], 'best_worst')).toBe('invalid');
  });

  it('treats a response of whitespace only, as Python strips it, as empty: the trainer would refuse it', () => {
    for (const blank of [' ', '\u001f', '\u001c\n', '\u0085', '\t\u00a0']) {
      expect(isBlank(blank)).toBe(true);
      expect(responsesToScore(['horse and tiger .', blank], 'first_two')).toBe('invalid');
      expect(responsesToScore(['a', blank, 'b'], 'best_worst')).toEqual(['a', 'b']);
    }
    expect(isBlank('a\u001f')).toBe(false);
  });

  it('best_worst picks (argmax, argmin), the earlier response on equal scores, and never one response twice', () => {
    expect(selectPair(['a', 'b', 'c', 'd'], [1, 3, 0, 2], 'best_worst')).toEqual({ responses: ['b', 'c'], scores: [3, 0] });
    expect(selectPair(['a', 'b', 'c', 'd'], [3, 3, 0, 0], 'best_worst')).toEqual({ responses: ['a', 'c'], scores: [3, 0] });
    expect(selectPair(['a', 'b', 'c'], [1, 1, 1], 'best_worst')).toEqual({ responses: ['a', 'b'], scores: [1, 1] });
    expect(selectPair(['a', 'b', 'c'], [1, 3, 0], 'first_two')).toEqual({ responses: ['a', 'b'], scores: [1, 3] });
  });
});

describe('JudgePairsRequest.pairing', () => {
  it('maps unset or unspecified to first_two and PAIRING_BEST_WORST to best_worst, and refuses other values naming the field', () => {
    expect(toJudgeJob(JudgePairsRequest.fromPartial({})).pairing).toBe('first_two');
    expect(toJudgeJob(JudgePairsRequest.fromPartial({ pairing: Pairing.PAIRING_UNSPECIFIED })).pairing).toBe('first_two');
    expect(toJudgeJob(JudgePairsRequest.fromPartial({ pairing: Pairing.PAIRING_BEST_WORST })).pairing).toBe('best_worst');
    const error = (() => {
      try {
        toJudgeJob(JudgePairsRequest.fromPartial({ pairing: 7 as Pairing }));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('pairing');
  });
});
