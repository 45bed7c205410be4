import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { ArtifactStore, readJsonl } from '@alignment/artifacts';
import { checkRecord, PromptEncoding } from '@alignment/contracts';
import { CancelledError, InvalidArgumentError } from '@alignment/errors';
import { causalModelCache, ModelCache, RewardModel, scoreWith, type LanguageModel } from '@alignment/lm';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { pairwisePrompt, ANSWER_A, ANSWER_B } from './pairwise-prompt';
import { labelPair, judgePairs, type JudgeDeps, type JudgeJob, type LabelledPair } from './judge-pairs';

let models: TinyModels;
let deps: JudgeDeps;
let dir: string;

beforeAll(async () => {
  models = await tinyModels();
  deps = {
    languageModels: causalModelCache(3),
    rewardModels: new ModelCache((d) => RewardModel.load(d), 1),
    store: new ArtifactStore(path.join(os.tmpdir(), 'unused-store')),
  };
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  await deps?.languageModels.clear();
  await deps?.rewardModels.clear();
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'judge-'));
  deps.store = new ArtifactStore(path.join(dir, 'store'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

type Record = { prompt_index?: number; prompt: string | Array<{ role: string; content: string }>; responses: string[]; id?: string };

function responsesFile(records: Record[]): { uri: string; sha256: string } {
  const file = path.join(dir, 'responses.jsonl');
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return { uri: file, sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex') };
}

async function pairsOf(file: string): Promise<LabelledPair[]> {
  const out: LabelledPair[] = [];
  for await (const { value } of readJsonl(file)) out.push(checkRecord<LabelledPair>('LabelledPair', value)); // formats.proto
  return out;
}

function spaJob(records: Record[], config: Partial<NonNullable<JudgeJob['spaImplicit']>> = {}): JudgeJob {
  return {
    method: 'spa_implicit',
    responses: responsesFile(records),
    spaImplicit: { policy: { uri: models.policy, sha256: '' }, reference: { uri: models.reference, sha256: '' }, tieTolerance: 0, lengthPenalty: 0, ...config },
    outputUri: '',
    // reference.json's scores render their prompts through the chat template.
    promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE,
  };
}

/** PyTorch's logp(y|x) of a reference.json item under the policy and the reference. */
function torchLogps(prompt: string, response: string): { policy: number; reference: number } {
  const find = (list: typeof models.values.scores.policy) => list.find((s) => s.prompt === prompt && s.response === response)!.logp;
  return { policy: find(models.values.scores.policy), reference: find(models.values.scores.reference) };
}

describe('JudgePairs: spa_implicit (SPA Eq. 7-8, 13)', () => {
  const prompt = 'What colour is the sky?';
  const [blue, green] = ['The sky is blue.', 'Green, mostly.'];

  it('chooses the response with the higher logp_policy − logp_reference, with PyTorch’s scores', async () => {
    const outcome = await judgePairs(spaJob([{ prompt, responses: [blue, green], id: 'q1' }]), deps);
    const [pair] = await pairsOf(outcome.pairs.path);
    const s = [blue, green].map((r) => {
      const t = torchLogps(prompt, r);
      return t.policy - t.reference;
    });
    const [chosen, rejected] = s[0] > s[1] ? [blue, green] : [green, blue];
    expect(pair).toMatchObject({ prompt_index: 0, id: 'q1', prompt, chosen, rejected, method: 'spa_implicit' });
    expect(pair.chosen_score).toBeCloseTo(Math.max(...s), 3);
    expect(pair.rejected_score).toBeCloseTo(Math.min(...s), 3);
    expect(pair.margin).toBeCloseTo(Math.abs(s[0] - s[1]), 3);
    expect(outcome.counts).toEqual({ numPrompts: 1, numPairs: 1, droppedIdentical: 0, droppedTies: 0, droppedInvalid: 0 });
    expect(outcome.pairs.sha256).toBe(createHash('sha256').update(fs.readFileSync(outcome.pairs.path)).digest('hex'));
  });

  it('drops and counts identical responses, ties within β·tolerance, and pairs it cannot score', async () => {
    const records: Record[] = [
      { prompt, responses: [blue, green] },
      { prompt, responses: [blue, blue] },
      { prompt, responses: [blue, ''] },
      { prompt, responses: [blue] },
      { prompt, responses: [blue, 'word '.repeat(400)] }, // longer than the 256-token context
    ];
    const s = [blue, green].map((r) => torchLogps(prompt, r)).map((t) => t.policy - t.reference);
    const margin = Math.abs(s[0] - s[1]);
    const kept = await judgePairs(spaJob(records, { beta: 0.1, tieTolerance: 0.1 * margin * 0.9 }), deps);
    expect(kept.counts).toEqual({ numPrompts: 5, numPairs: 1, droppedIdentical: 1, droppedTies: 0, droppedInvalid: 3 });
    const tied = await judgePairs(spaJob(records, { beta: 0.1, tieTolerance: 0.1 * margin * 1.1 }), deps);
    expect(tied.counts).toEqual({ numPrompts: 5, numPairs: 0, droppedIdentical: 1, droppedTies: 1, droppedInvalid: 3 });
    expect(await pairsOf(tied.pairs.path)).toEqual([]);
  });

  it('applies the length penalty of Eq. 13: s(y) − α·|y| (tokens) flips a choice that favoured the longer response', async () => {
    const texts = [blue, green, 'A preference pair has a prompt, a chosen and a rejected response.', 'Two plus two is four.', 'Ça va — très bien!'];
    const records = texts.flatMap((a, i) => texts.slice(i + 1).map((b) => ({ prompt, responses: [a, b] })));
    const plain = await pairsOf((await judgePairs(spaJob(records), deps)).pairs.path);
    const lease = await deps.languageModels.acquire(models.policy);
    const tokens = (r: string) => lease.value.tokenizer.encodeResponse(r).length;
    lease.release();
    const favoursLonger = plain.find((p) => tokens(p.chosen) > tokens(p.rejected))!;
    expect(favoursLonger).toBeDefined();
    // A penalty per token larger than the plain margin per extra token of the longer response.
    const alpha = (2 * favoursLonger.margin) / (tokens(favoursLonger.chosen) - tokens(favoursLonger.rejected));
    const [penalised] = await pairsOf(
      (await judgePairs(spaJob([{ prompt, responses: [favoursLonger.chosen, favoursLonger.rejected] }], { lengthPenalty: alpha }), deps)).pairs.path,
    );
    expect(penalised.chosen).toBe(favoursLonger.rejected);
    expect(penalised.chosen_score).toBeCloseTo(favoursLonger.rejected_score - alpha * tokens(favoursLonger.rejected), 6);
    expect(penalised.rejected_score).toBeCloseTo(favoursLonger.chosen_score - alpha * tokens(favoursLonger.chosen), 6);
  });

  it('judges only its shard (prompt_index % count == index) and keeps prompt order', async () => {
    const records = [0, 1, 2, 3, 4].map((i) => ({ prompt_index: i, prompt: `${prompt} ${i}`, responses: [blue, green] }));
    const outcome = await judgePairs({ ...spaJob(records), shard: { index: 1, count: 2 } }, deps);
    expect((await pairsOf(outcome.pairs.path)).map((p) => p.prompt_index)).toEqual([1, 3]);
    expect(outcome.counts.numPrompts).toBe(2);
  });
});

describe('JudgePairs: prompt encoding and multi-turn prompts', () => {
  const [blue, green] = ['The sky is blue.', 'Green, mostly.'];
  /** logp_policy − logp_reference of `response` after `promptIds` of each model, as the trainer would score it. */
  async function spaScore(promptIds: (m: LanguageModel) => number[], response: string): Promise<number> {
    const [policy, reference] = [await deps.languageModels.acquire(models.policy), await deps.languageModels.acquire(models.reference)];
    try {
      const score = async (m: LanguageModel) => (await scoreWith(m, [{ promptIds: promptIds(m), responseIds: m.tokenizer.encodeResponse(response) }]))[0].logp;
      return (await score(policy.value as LanguageModel)) - (await score(reference.value as LanguageModel));
    } finally {
      policy.release();
      reference.release();
    }
  }

  it('scores a string prompt as raw text by default: no template token, as the trainer’s raw-text encoding', async () => {
    const prompt = 'What colour is the sky?';
    const [pair] = await pairsOf((await judgePairs({ ...spaJob([{ prompt, responses: [blue, green] }]), promptEncoding: undefined }, deps)).pairs.path);
    const raw = await Promise.all([blue, green].map((r) => spaScore((m) => m.tokenizer.encodeText(prompt), r)));
    expect(pair.chosen_score).toBeCloseTo(Math.max(...raw), 3);
    expect(pair.rejected_score).toBeCloseTo(Math.min(...raw), 3);
    const [templated] = await pairsOf((await judgePairs(spaJob([{ prompt, responses: [blue, green] }]), deps)).pairs.path);
    expect(Math.abs(templated.chosen_score - pair.chosen_score)).toBeGreaterThan(1e-3);
  });

  it('scores a multi-turn conversation through the chat template and writes it, turn for turn, as the pair’s prompt', async () => {
    const turns = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Name a colour.' },
      { role: 'assistant', content: 'Red.' },
      { role: 'user', content: 'What colour is the sky?' },
    ];
    const outcome = await judgePairs({ ...spaJob([{ prompt: turns, responses: [blue, green], id: 'm1' }]), promptEncoding: undefined }, deps);
    const [pair] = await pairsOf(outcome.pairs.path);
    expect(pair).toMatchObject({ prompt_index: 0, id: 'm1', prompt: turns, method: 'spa_implicit' });
    const scores = await Promise.all([blue, green].map((r) => spaScore((m) => m.tokenizer.encodePrompt(turns, { strings: 'raw-text' }), r)));
    expect(pair.chosen_score).toBeCloseTo(Math.max(...scores), 3);
    expect(pair.chosen).toBe(scores[0] > scores[1] ? blue : green);
    // A rule reads the conversation's last user turn.
    const arithmetic = [{ role: 'user', content: 'Hi.' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'What is 2 + 3?' }];
    const ruled = await judgePairs({ method: 'rule', responses: responsesFile([{ prompt: arithmetic, responses: ['It is 6.', 'It is 5.'] }]), rule: { rule: 'arithmetic/exact', tieTolerance: 0 }, outputUri: '' }, deps);
    expect(await pairsOf(ruled.pairs.path)).toEqual([
      { prompt_index: 0, prompt: arithmetic, chosen: 'It is 5.', rejected: 'It is 6.', chosen_score: 1, rejected_score: 0, margin: 1, method: 'rule' },
    ]);
  });

  it('refuses PROMPT_ENCODING_CHAT_TEMPLATE for models without a chat template, naming prompt_encoding', async () => {
    const bare = (name: 'policy' | 'reference') => {
      const copy = path.join(dir, name);
      fs.cpSync(models[name], copy, { recursive: true });
      fs.rmSync(path.join(copy, 'chat_template.jinja'));
      const configPath = path.join(copy, 'tokenizer_config.json');
      const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as { chat_template?: unknown };
      delete config.chat_template;
      fs.writeFileSync(configPath, JSON.stringify(config));
      return { uri: copy, sha256: '' };
    };
    const job = spaJob([{ prompt: 'What colour is the sky?', responses: [blue, green] }]);
    job.spaImplicit = { ...job.spaImplicit!, policy: bare('policy'), reference: bare('reference') };
    const error = await judgePairs(job, deps).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ field: 'prompt_encoding', reason: expect.stringContaining('the policy or reference model directory has no chat template') });
    // Raw text needs no template.
    const outcome = await judgePairs({ ...job, promptEncoding: PromptEncoding.PROMPT_ENCODING_RAW_TEXT }, deps);
    expect(outcome.counts.numPairs).toBe(1);
    // The LLM-as-judge question is always a user turn of the judge model's template.
    const llm: JudgeJob = { method: 'llm_as_judge', responses: job.responses, llmAsJudge: { model: job.spaImplicit!.policy, tieTolerance: 0 }, outputUri: '' };
    await expect(judgePairs(llm, deps)).rejects.toMatchObject({ field: 'llm_as_judge.judge_model', reason: expect.stringContaining('has no chat template') });
  });
});

describe('JudgePairs: reward_model, llm_as_judge, rule', () => {
  it('reward_model: chosen = higher reward, scores as PyTorch computes them', async () => {
    const ref = models.values.rewards.filter((r) => r.prompt === 'What colour is the sky?');
    const job: JudgeJob = {
      method: 'reward_model',
      responses: responsesFile([{ prompt: ref[0].prompt, responses: [ref[0].response, ref[1].response] }]),
      rewardModel: { model: { uri: models.reward, sha256: '' }, tieTolerance: 0 },
      outputUri: path.join(dir, 'pairs.jsonl'),
    };
    const [pair] = await pairsOf((await judgePairs(job, deps)).pairs.path);
    const best = ref[0].score > ref[1].score ? ref[0] : ref[1];
    expect(pair.chosen).toBe(best.response);
    expect(pair.chosen_score).toBeCloseTo(best.score, 4);
    expect(pair.method).toBe('reward_model');
  });

  it('llm_as_judge: Listing 1 asked in both orders, so swapping the responses swaps the scores exactly', async () => {
    const judge = (responses: string[]): JudgeJob => ({
      method: 'llm_as_judge',
      responses: responsesFile([{ prompt: 'What colour is the sky?', responses }]),
      llmAsJudge: { model: { uri: models.policy, sha256: '' }, tieTolerance: 0 },
      outputUri: '',
    });
    const [forward] = await pairsOf((await judgePairs(judge(['Blue.', 'Green.']), deps)).pairs.path);
    const [swapped] = await pairsOf((await judgePairs(judge(['Green.', 'Blue.']), deps)).pairs.path);
    expect(swapped).toEqual(forward);
    // The scores are the judge's mean log-prob of naming each response, over the two orders.
    const lease = await deps.languageModels.acquire(models.policy);
    const m = lease.value;
    const item = (a: string, b: string, answer: string) => ({ promptIds: m.tokenizer.encodePrompt(pairwisePrompt('What colour is the sky?', a, b), { strings: 'chat-template' }), responseIds: m.tokenizer.encodeText(answer) });
    const [aFirst, bFirst, aSecond, bSecond] = (
      await scoreWith(m, [item('Blue.', 'Green.', ANSWER_A), item('Blue.', 'Green.', ANSWER_B), item('Green.', 'Blue.', ANSWER_A), item('Green.', 'Blue.', ANSWER_B)])
    ).map((s) => s.logp);
    lease.release();
    const blue = (aFirst + bSecond) / 2;
    const green = (bFirst + aSecond) / 2;
    expect(forward.chosen).toBe(blue > green ? 'Blue.' : 'Green.');
    expect(forward.chosen_score).toBeCloseTo(Math.max(blue, green), 5);
    expect(forward.rejected_score).toBeCloseTo(Math.min(blue, green), 5);
  });

  it('rule: a registered verifier labels, equal scores are ties, prompts it cannot judge are invalid', async () => {
    const job: JudgeJob = {
      method: 'rule',
      responses: responsesFile([
        { prompt: 'What is 2 + 3?', responses: ['It is 6.', 'It is 5.'] },
        { prompt: 'What is 4 * 4?', responses: ['16', 'sixteen is 16'] },
        { prompt: 'Write a poem.', responses: ['Roses.', 'Violets.'] },
      ]),
      rule: { rule: 'arithmetic/exact', tieTolerance: 0 },
      outputUri: '',
    };
    const outcome = await judgePairs(job, deps);
    expect(await pairsOf(outcome.pairs.path)).toEqual([
      { prompt_index: 0, prompt: 'What is 2 + 3?', chosen: 'It is 5.', rejected: 'It is 6.', chosen_score: 1, rejected_score: 0, margin: 1, method: 'rule' },
    ]);
    expect(outcome.counts).toEqual({ numPrompts: 3, numPairs: 1, droppedIdentical: 0, droppedTies: 1, droppedInvalid: 1 });
  });
});

describe('JudgePairs: bad requests and cancellation', () => {
  async function field(job: JudgeJob): Promise<string> {
    const error = await judgePairs(job, deps).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as InvalidArgumentError).field;
  }
  const records = [{ prompt: 'p', responses: ['a', 'b'] }];

  it('names the field of every kind of bad input, and writes nothing', async () => {
    const rule = (name: string, tieTolerance = 0): JudgeJob => ({ method: 'rule', responses: responsesFile(records), rule: { rule: name, tieTolerance }, outputUri: '' });
    expect(await field({ ...rule('length/shorter'), method: undefined })).toBe('method');
    expect(await field({ ...rule('length/shorter'), rule: undefined })).toBe('rule');
    expect(await field({ ...rule('length/shorter'), rewardModel: { tieTolerance: 0 } })).toBe('reward_model');
    expect(await field(rule('nope/nope'))).toBe('rule.rule');
    expect(await field(rule('length/shorter', -1))).toBe('rule.tie_tolerance');
    expect(await field({ ...rule('length/shorter'), responses: undefined })).toBe('responses.uri');
    expect(await field({ ...rule('length/shorter'), responses: { uri: path.join(dir, 'none.jsonl'), sha256: '' } })).toBe('responses.uri');
    expect(await field({ ...rule('length/shorter'), responses: { ...responsesFile(records), sha256: 'c'.repeat(64) } })).toBe('responses.sha256');
    expect(await field({ ...rule('length/shorter'), shard: { index: 5, count: 2 } })).toBe('shard.index');
    expect(await field({ ...rule('length/shorter'), outputUri: 's3://b/k' })).toBe('output_uri');
    fs.writeFileSync(path.join(dir, 'bad.jsonl'), '{"prompt": "p", "responses": "not a list"}\n');
    expect(await field({ ...rule('length/shorter'), responses: { uri: path.join(dir, 'bad.jsonl'), sha256: '' } })).toBe('responses');
    expect(await field(spaJob(records, { beta: 0 }))).toBe('spa_implicit.beta');
    expect(await field(spaJob(records, { lengthPenalty: -0.1 }))).toBe('spa_implicit.length_penalty');
    expect(await field(spaJob(records, { reference: undefined }))).toBe('spa_implicit.reference.onnx.uri');
    expect(await field(spaJob(records, { policy: { uri: path.join(dir, 'missing'), sha256: '' } }))).toBe('spa_implicit.policy.onnx.uri');
    expect(await field(spaJob(records, { policy: { uri: models.reward, sha256: '' } }))).toBe('spa_implicit.policy.onnx.uri');
    expect(await field({ method: 'reward_model', responses: responsesFile(records), rewardModel: { model: { uri: models.policy, sha256: '' }, tieTolerance: 0 }, outputUri: '' })).toBe(
      'reward_model.reward_model.onnx.uri',
    );
    expect(fs.existsSync(deps.store.root)).toBe(false);
  });

  it('stops when the signal aborts and leaves no file behind', async () => {
    const many = Array.from({ length: 64 }, (_, i) => ({ prompt: `Prompt ${i}`, responses: ['The sky is blue.', 'Green, mostly.'] }));
    const controller = new AbortController();
    const out = path.join(dir, 'out', 'pairs.jsonl');
    const run = judgePairs({ ...spaJob(many), outputUri: out }, { ...deps, chunkSize: 8 }, { signal: controller.signal, onProgress: () => controller.abort() });
    await expect(run).rejects.toThrow(CancelledError);
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });
});

describe('labelPair', () => {
  const record = { promptIndex: 3, prompt: 'p' };
  it('puts the higher score first, and calls equal scores or |scale·Δ| < tolerance a tie', () => {
    expect(labelPair(record, ['a', 'b'], [1, 3], 'rule', 1, 0)).toMatchObject({ chosen: 'b', rejected: 'a', chosen_score: 3, rejected_score: 1, margin: 2 });
    expect(labelPair(record, ['a', 'b'], [2, 2], 'rule', 1, 0)).toBe('tie');
    expect(labelPair(record, ['a', 'b'], [1, 3], 'spa_implicit', 0.1, 0.25)).toBe('tie');
    expect(labelPair(record, ['a', 'b'], [1, 3], 'spa_implicit', 0.1, 0.15)).not.toBe('tie');
  });
});
