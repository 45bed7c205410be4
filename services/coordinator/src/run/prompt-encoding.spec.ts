// RunSpec.prompt_encoding through a whole run with in-process fake services: every call that encodes a prompt
// (GENERATE and EVALUATE sampling, the SPA judge, every LEARN job) is sent the run's choice, raw text by default;
// and a run whose seed pairs, round prompts and evaluation prompts are multi-turn conversations carries them, turn
// for turn, from the prompt sets through the responses and the judged pairs to the trainer.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JobState, JudgeMethod, PromptEncoding, Stage } from '@alignment/contracts';
import { closeHarnesses, harness, runToEnd } from '../../testing/engine-harness';
import { makeWorkspace } from '../../testing/run-fixtures';

afterAll(closeHarnesses);

const RAW = PromptEncoding.PROMPT_ENCODING_RAW_TEXT;
const TEMPLATE = PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE;

describe('prompt_encoding', () => {
  it('reaches every generator, judge and trainer call: raw text when unset, the chat template when asked', async () => {
    const sent = async (promptEncoding?: PromptEncoding) => {
      const h = harness();
      const run = await runToEnd(h, promptEncoding === undefined ? {} : { promptEncoding });
      expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      const learn = h.fakes.learn.calls.map((c) => (c.spec.kind?.$case === 'preference' ? c.spec.kind.value.promptEncoding : undefined));
      return {
        generate: new Set(h.fakes.generate.calls.map((c) => c.promptEncoding)),
        // The rounds' SPA judge encodes prompts; the evaluation's rule reads text and is sent none.
        judge: new Set(h.fakes.judge.calls.filter((c) => c.method === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT).map((c) => c.promptEncoding)),
        evaluationJudge: new Set(h.fakes.judge.calls.filter((c) => c.method === JudgeMethod.JUDGE_METHOD_RULE).map((c) => c.promptEncoding)),
        learn: new Set(learn),
        calls: [h.fakes.generate.calls.length, h.fakes.judge.calls.length, learn.length],
        // stage.json's input identities: the setting fingerprints the stages only when it is not the default.
        fingerprint: (JSON.parse(fs.readFileSync(path.join(h.dataDir, 'runs', 'run-1', 'round-1', 'generate', 'stage.json'), 'utf8')) as { inputs: Record<string, string> }).inputs.promptEncoding,
      };
    };
    const unset = await sent();
    // Two rounds: GENERATE per round and two EVALUATE samplings per round (π_init once), JUDGE per round, LEARN 0..2.
    expect(unset.calls[0]).toBeGreaterThanOrEqual(4);
    expect(unset.calls[2]).toBe(3);
    expect([unset.generate, unset.judge, unset.learn, unset.fingerprint]).toEqual([new Set([RAW]), new Set([RAW]), new Set([RAW]), undefined]);
    expect(unset.evaluationJudge).toEqual(new Set([undefined]));
    expect(await sent(RAW)).toMatchObject({ generate: new Set([RAW]), judge: new Set([RAW]), learn: new Set([RAW]), fingerprint: undefined });
    expect(await sent(TEMPLATE)).toMatchObject({ generate: new Set([TEMPLATE]), judge: new Set([TEMPLATE]), learn: new Set([TEMPLATE]), fingerprint: String(TEMPLATE) });
  });

  it('carries multi-turn conversations from the seed pairs, round and evaluation prompt sets to the judged pairs and the trainer', async () => {
    const ws = makeWorkspace({ rounds: 2, promptsPerRound: 3 });
    const turns = (tag: string, i: number) => [
      { role: 'system', content: 'You answer briefly.' },
      { role: 'user', content: `${tag} question ${i}` },
      { role: 'assistant', content: `${tag} answer ${i}` },
      { role: 'user', content: `${tag} follow-up ${i}` },
    ];
    const jsonl = (records: unknown[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    fs.writeFileSync(
      ws.seedPairs,
      jsonl(Array.from({ length: 8 }, (_, i) => ({ prompt: turns('seed', i), chosen: [{ role: 'assistant', content: `good ${i}` }], rejected: [{ role: 'assistant', content: `bad ${i}` }] }))),
    );
    ws.roundPrompts.forEach((file, t) => fs.writeFileSync(file, jsonl([0, 1, 2].map((i) => ({ id: `r${t + 1}-${i}`, prompt: turns(`round ${t + 1}`, i) })))));
    fs.writeFileSync(ws.evalPrompts, jsonl([0, 1, 2].map((i) => ({ prompt: turns('eval', i) }))));
    const h = harness(ws);
    const run = await runToEnd(h, { promptEncoding: TEMPLATE });
    expect([run.state, run.error]).toEqual([JobState.JOB_STATE_SUCCEEDED, '']);
    const read = (...parts: string[]) =>
      fs.readFileSync(path.join(h.dataDir, 'runs', 'run-1', ...parts), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const responses = read('round-1', 'generate', 'responses.jsonl');
    expect(responses.map((r) => r.prompt)).toEqual([0, 1, 2].map((i) => turns('round 1', i)));
    const pairs = read('round-2', 'judge', 'pairs.jsonl');
    expect(pairs.length).toBeGreaterThan(0);
    for (const pair of pairs) {
      expect(pair.prompt).toEqual(turns('round 2', pair.prompt_index as number));
      expect(typeof pair.chosen).toBe('string');
    }
    // The round's LEARN job trains on exactly those pairs; EVALUATE sampled the held-out conversations.
    const learn2 = h.fakes.learn.calls[2].spec.kind;
    const judged = run.stages.find((s) => s.round === 2 && s.stage === Stage.STAGE_JUDGE)!.outputs[0];
    expect(learn2?.$case === 'preference' && learn2.value.pairs?.sha256).toBe(judged.sha256);
    const evaluations = fs.readdirSync(path.join(h.dataDir, 'runs', 'run-1', 'round-0', 'evaluate')).filter((f) => f.startsWith('baseline') && f.endsWith('.jsonl'));
    expect(evaluations.length).toBeGreaterThan(0);
    expect(read('round-0', 'evaluate', evaluations[0]).map((r) => r.prompt)).toEqual([0, 1, 2].map((i) => turns('eval', i)));
  });
});
