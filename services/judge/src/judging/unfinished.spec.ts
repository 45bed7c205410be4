// Pairs with a response cut at max_new_tokens (judge.proto JudgePairsRequest.unfinished_pairs; docs/algorithm.md §7):
// the policies on a hand case with known scores (the `length/shorter` rule: score = −characters), and the SPA judge
// scoring a cut response without EOS.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactStore, readJsonl } from '@alignment/artifacts';
import { checkRecord, JudgePairsRequest, PromptEncoding, UnfinishedPairs } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { causalModelCache, LanguageModel, ModelCache, RewardModel, scoreSequences } from '@alignment/lm';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { toJudgeJob } from '../service';
import { judgePairs, type JudgeDeps, type JudgeJob, type LabelledPair } from './judge-pairs';
import { finishedFlags, resolveUnfinishedPolicy } from './unfinished';

type Line = { prompt: string; responses: string[]; finish_reasons?: string[] };

let models: TinyModels;
let dir: string;
let deps: JudgeDeps;
beforeAll(async () => {
  models = await tinyModels();
}, TINY_MODELS_TIMEOUT_MS);
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfinished-'));
  deps = {
    languageModels: causalModelCache(2),
    rewardModels: new ModelCache((d) => RewardModel.load(d), 1),
    store: new ArtifactStore(path.join(dir, 'store')),
  };
});
afterEach(async () => {
  await deps.languageModels.clear();
  fs.rmSync(dir, { recursive: true, force: true });
});

function responses(lines: Line[]): { uri: string; sha256: string } {
  const file = path.join(dir, 'responses.jsonl');
  fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return { uri: file, sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex') };
}

function ruleJob(lines: Line[], extra: Partial<JudgeJob> = {}): JudgeJob {
  return { method: 'rule', responses: responses(lines), rule: { rule: 'length/shorter', tieTolerance: 0 }, outputUri: '', ...extra };
}

async function pairsOf(file: string): Promise<LabelledPair[]> {
  const out: LabelledPair[] = [];
  for await (const { value } of readJsonl(file)) out.push(checkRecord<LabelledPair>('LabelledPair', value)); // formats.proto
  return out;
}

// Prompt 0: the shorter response (chosen by the rule) was cut; prompt 1: both finished; prompt 2: no finish reasons.
const HAND: Line[] = [
  { prompt: 'p0', responses: ['cut', 'finished one'], finish_reasons: ['length', 'stop'] },
  { prompt: 'p1', responses: ['ab', 'abcd'], finish_reasons: ['stop', 'stop'] },
  { prompt: 'p2', responses: ['xy', 'xyz'] },
];

describe('JudgePairs: pairs with an unfinished response', () => {
  it('drops them by default (and with DROP), counts them, and marks the pairs it writes finished', async () => {
    for (const job of [ruleJob(HAND), ruleJob(HAND, { unfinishedPairs: 'drop' })]) {
      const outcome = await judgePairs(job, deps);
      const pairs = await pairsOf(outcome.pairs.path);
      expect(pairs.map((p) => [p.prompt, p.chosen, p.chosen_finished, p.rejected_finished])).toEqual([
        ['p1', 'ab', true, true],
        ['p2', 'xy', undefined, undefined], // no finish reasons: the flags stay absent (= finished)
      ]);
      expect(outcome.unfinished).toEqual({ dropped: 1, inPairs: 0 });
      expect(outcome.counts.numPairs).toBe(2);
    }
  });

  it('KEEP judges them as any other and marks the unfinished side', async () => {
    const outcome = await judgePairs(ruleJob(HAND, { unfinishedPairs: 'keep' }), deps);
    const [p0] = await pairsOf(outcome.pairs.path);
    expect(p0).toMatchObject({ prompt: 'p0', chosen: 'cut', rejected: 'finished one', chosen_finished: false, rejected_finished: true });
    expect([p0.chosen_score, p0.rejected_score]).toEqual([-3, -12]);
    expect(outcome.unfinished).toEqual({ dropped: 0, inPairs: 1 });
  });

  it('PENALIZE subtracts the penalty from an unfinished response’s score before choosing', async () => {
    // −3 − 5 = −8 is still above −12: the cut response stays chosen, with the penalised score and margin.
    const mild = await judgePairs(ruleJob(HAND, { unfinishedPairs: 'penalize', unfinishedPenalty: 5 }), deps);
    const [kept] = await pairsOf(mild.pairs.path);
    expect([kept.chosen, kept.chosen_score, kept.rejected_score, kept.margin]).toEqual(['cut', -8, -12, 4]);
    // −3 − 10 = −13 falls below −12: the finished response is chosen now.
    const strong = await judgePairs(ruleJob(HAND, { unfinishedPairs: 'penalize', unfinishedPenalty: 10 }), deps);
    const [flipped] = await pairsOf(strong.pairs.path);
    expect(flipped).toMatchObject({ chosen: 'finished one', rejected: 'cut', chosen_finished: true, rejected_finished: false, chosen_score: -12, rejected_score: -13 });
    expect(strong.unfinished).toEqual({ dropped: 0, inPairs: 1 });
    // The default penalty is 1: −4 against −12.
    const byDefault = await judgePairs(ruleJob(HAND, { unfinishedPairs: 'penalize' }), deps);
    expect((await pairsOf(byDefault.pairs.path))[0].chosen_score).toBe(-4);
  });

  it('PENALIZE applies before best_worst ranks the responses; DROP drops a best-worst pair with an unfinished side', async () => {
    const line: Line = { prompt: 'q', responses: ['a', 'abc', 'abcdef'], finish_reasons: ['length', 'stop', 'stop'] };
    const penalized = await judgePairs(ruleJob([line], { pairing: 'best_worst', unfinishedPairs: 'penalize', unfinishedPenalty: 100 }), deps);
    expect((await pairsOf(penalized.pairs.path)).map((p) => [p.chosen, p.rejected])).toEqual([['abc', 'a']]);
    const dropped = await judgePairs(ruleJob([line], { pairing: 'best_worst' }), deps);
    expect(dropped.counts.numPairs).toBe(0);
    expect(dropped.unfinished).toEqual({ dropped: 1, inPairs: 0 });
  });

  it('refuses a negative penalty and a malformed finish_reasons, naming the field', async () => {
    await expect(judgePairs(ruleJob(HAND, { unfinishedPairs: 'penalize', unfinishedPenalty: -1 }), deps)).rejects.toThrow(
      new InvalidArgumentError('unfinished_penalty', 'must be >= 0, got -1'),
    );
    const bad = ruleJob([{ prompt: 'p', responses: ['a', 'b'], finish_reasons: ['stop'] }]);
    await expect(judgePairs(bad, deps)).rejects.toThrow(/"finish_reasons" must be a list of strings, one per response/);
  });

  it('maps the request’s policy (unset = drop) and the flags of first occurrences', () => {
    expect(toJudgeJob(JudgePairsRequest.fromPartial({})).unfinishedPairs).toBeUndefined();
    expect(resolveUnfinishedPolicy(undefined, undefined)).toEqual({ name: 'drop', penalty: 0 });
    const job = toJudgeJob(JudgePairsRequest.fromPartial({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE, unfinishedPenalty: 2 }));
    expect([job.unfinishedPairs, job.unfinishedPenalty]).toEqual(['penalize', 2]);
    expect(toJudgeJob(JudgePairsRequest.fromPartial({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP })).unfinishedPairs).toBe('keep');
    expect(() => toJudgeJob(JudgePairsRequest.fromPartial({ unfinishedPairs: 9 as UnfinishedPairs }))).toThrow(InvalidArgumentError);
    expect(finishedFlags({ responses: ['a', 'b', 'a'], finished: [false, true, true] }, ['b', 'a'])).toEqual([true, false]);
    expect(finishedFlags({ responses: ['a', 'b'] }, ['a', 'b'])).toEqual([true, true]);
  });

  it('the SPA judge scores a cut response without EOS (and a finished one with it)', async () => {
    const prompt = 'What colour is the sky?';
    const [blue, green] = ['The sky is blue.', 'Green, mostly.'];
    const job: JudgeJob = {
      method: 'spa_implicit',
      responses: responses([{ prompt, responses: [blue, green], finish_reasons: ['length', 'stop'] }]),
      spaImplicit: { policy: { uri: models.policy, sha256: '' }, reference: { uri: models.reference, sha256: '' }, tieTolerance: 0, lengthPenalty: 0 },
      outputUri: '',
      unfinishedPairs: 'keep',
      promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE,
    };
    const [pair] = await pairsOf((await judgePairs(job, deps)).pairs.path);
    const policy = await LanguageModel.load(models.policy);
    const reference = await LanguageModel.load(models.reference);
    try {
      const score = async (text: string, finished: boolean) => {
        const item = (m: LanguageModel) => ({ promptIds: m.tokenizer.encodePrompt(prompt, { strings: 'chat-template' }), responseIds: m.tokenizer.encodeResponse(text, { finished }) });
        const [p] = await scoreSequences(policy, [item(policy)]);
        const [r] = await scoreSequences(reference, [item(reference)]);
        return p.logp - r.logp;
      };
      const blueCut = await score(blue, false);
      const greenDone = await score(green, true);
      const byText = { [blue]: pair.chosen === blue ? pair.chosen_score : pair.rejected_score, [green]: pair.chosen === green ? pair.chosen_score : pair.rejected_score };
      expect(byText[blue]).toBeCloseTo(blueCut, 4);
      expect(byText[green]).toBeCloseTo(greenDone, 4);
      expect(Math.abs(blueCut - (await score(blue, true)))).toBeGreaterThan(1e-3); // the EOS term is gone
      expect(pair.chosen === blue ? pair.chosen_finished : pair.rejected_finished).toBe(false);
    } finally {
      await policy.release();
      await reference.release();
    }
  });
});
