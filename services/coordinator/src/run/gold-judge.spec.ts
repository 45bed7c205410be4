// evaluation.gold_judge_address (issue 13): every judgement of the EVALUATE stages (π_t against π_init, and the
// self-labels' accuracy) goes to the judge at that address, none to the stack's judge, whose JUDGE stages are
// unchanged. The same run over gRPC with a Python gold judge: clients/python/tests/test_gold_judge.py.
import { JobState, JudgeMethod } from '@alignment/contracts';
import { closeHarnesses, harness, runToEnd } from '../../testing/engine-harness';

afterAll(closeHarnesses);

const evaluation = (h: ReturnType<typeof harness>, goldJudgeAddress: string) => ({
  prompts: { uri: h.ws.evalPrompts },
  evaluator: JudgeMethod.JUDGE_METHOD_RULE,
  rule: 'toy/gold',
  samplesPerPrompt: 2,
  goldJudgeAddress,
});

describe('a gold judge', () => {
  it("judges every comparison of the evaluation, and the stack's judge only labels the rounds", async () => {
    const h = harness();
    const run = await runToEnd(h, { evaluation: evaluation(h, '127.0.0.1:50070'), sharding: { judgeShards: 2 } });
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    // Rounds 0-2 compare π_t with π_init, rounds 1-2 also check the self-labels: 5 judgements of 2 shards each.
    expect(h.fakes.gold.calls).toHaveLength(10);
    expect(h.fakes.gold.calls.every((c) => c.method === JudgeMethod.JUDGE_METHOD_RULE && c.rule?.rule === 'toy/gold')).toBe(true);
    expect(new Set(h.fakes.goldAddresses)).toEqual(new Set(['127.0.0.1:50070']));
    expect(h.fakes.judge.calls.map((c) => c.method)).toEqual(Array(4).fill(JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT));
    for (const r of run.rounds) {
      expect(r.metrics['eval/comparisons']).toBeGreaterThan(0);
      if (r.round > 0) expect(r.metrics['judge/self_label_accuracy']).toBeGreaterThanOrEqual(0);
    }
  });

  it("is not called without an address: the stack's judge evaluates", async () => {
    const h = harness();
    expect((await runToEnd(h, { evaluation: evaluation(h, '') })).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(h.fakes.gold.calls).toHaveLength(0);
    expect(h.fakes.judge.calls.filter((c) => c.method === JudgeMethod.JUDGE_METHOD_RULE)).toHaveLength(5);
  });
});
