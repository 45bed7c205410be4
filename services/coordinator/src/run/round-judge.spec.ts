// RunSpec.judge_address (issue 13: any annotator, for the rounds too): every JUDGE stage of rounds 1..T goes to the
// user's alignment.v1.Judge at that address, over real gRPC on loopback (testing/shorter-judge-server.ts, a judge
// that prefers shorter responses), and the round's pairs, margins, ties, best-vs-worst pairing and confidence filter
// are that judge's, in its units. The whole path with a Python judge: clients/python/tests/test_round_judge.py.
import { Configuration, JobState, JudgeMethod, Pairing, Stage } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { createLogger } from '@alignment/service-kit';
import { freePort } from '@alignment/service-kit/testing';
import { closeHarnesses, harness, runToEnd } from '../../testing/engine-harness';
import { makeWorkspace, validSpec, type SpecPartial } from '../../testing/run-fixtures';
import { roundJudgeClients, roundMetrics, stageOutputLines, type Line } from '../../testing/round-judge-clients';
import { shorterScore, ShorterJudgeServer } from '../../testing/shorter-judge-server';
import { validateSpec } from './run-spec';

let judge: ShorterJudgeServer;
const rpc = roundJudgeClients(createLogger('round-judge-test'));
const roundJudge = () => rpc.roundJudge();

beforeAll(async () => {
  judge = await ShorterJudgeServer.start('my/shorter');
});
afterAll(async () => {
  closeHarnesses();
  rpc.close();
  await judge.shutdown();
});

const output = stageOutputLines;
const metricsOf = roundMetrics;
const external = (overrides: SpecPartial = {}): SpecPartial => ({ judgeAddress: judge.address, judgeRule: 'my/shorter', ...overrides });

describe('judge_address: the rounds labelled by your own judge', () => {
  it('sends it RULE requests naming judge_rule; chosen is the shorter, margins and ties in its units', async () => {
    const h = harness(makeWorkspace({ promptsPerRound: 12 }), undefined, { executors: { roundJudge: roundJudge() } });
    const before = judge.calls.length;
    const run = await runToEnd(h, external({ judgeTieMargin: 2, sharding: { judgeShards: 2 } }));
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    // Two rounds of two shards, all at judge_address; the stack's judge labelled no round (only evaluations, RULE).
    const calls = judge.calls.slice(before);
    expect(calls).toHaveLength(4);
    for (const c of calls) {
      expect(c.method).toBe(JudgeMethod.JUDGE_METHOD_RULE);
      expect(c.rule).toEqual({ rule: 'my/shorter', tieTolerance: 2 });
      expect(c.spaImplicit).toBeUndefined();
    }
    expect(h.fakes.judge.calls.every((c) => c.method === JudgeMethod.JUDGE_METHOD_RULE && c.rule?.rule === 'toy/gold')).toBe(true);

    for (const round of [1, 2]) {
      const responses = output(run, round, Stage.STAGE_GENERATE, 'responses.jsonl');
      const pairs = output(run, round, Stage.STAGE_JUDGE, 'pairs.jsonl');
      const m = metricsOf(run, round);
      // What the judge says about each prompt's first two responses, recomputed here.
      const decided = responses.filter((r) => {
        const [a, b] = r.responses as string[];
        return Math.abs(shorterScore(a) - shorterScore(b)) >= 2;
      });
      expect(decided.length).toBeGreaterThan(0);
      expect(pairs.map((p) => p.prompt_index)).toEqual(decided.map((r) => r.prompt_index));
      for (const p of pairs) {
        expect(String(p.chosen).length).toBeLessThan(String(p.rejected).length);
        expect(p.margin).toBe(String(p.rejected).length - String(p.chosen).length);
      }
      expect(m['judge/num_pairs']).toBe(decided.length);
      expect(m['judge/dropped_ties']).toBe(responses.length - decided.length);
      expect(m['judge/chosen_longer_rate']).toBe(0);
      // The judge's own units (characters here), not β-scaled as the SPA judge's are.
      expect(m['judge/mean_margin']).toBeCloseTo(pairs.reduce((s, p) => s + Number(p.margin), 0) / pairs.length, 9);
    }
  });

  it('ranks best against worst of generation.n, and the confidence filter keeps its largest margins', async () => {
    const h = harness(makeWorkspace({ promptsPerRound: 10 }), undefined, { executors: { roundJudge: roundJudge() } });
    const run = await runToEnd(
      h,
      external({ pairing: Pairing.PAIRING_BEST_WORST, generation: { n: 4, temperature: 0.7, maxNewTokens: 32 }, confidenceKeepFraction: 0.5 }),
    );
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const responses = output(run, 1, Stage.STAGE_GENERATE, 'responses.jsonl');
    const judged = output(run, 1, Stage.STAGE_JUDGE, 'judged_pairs.jsonl');
    const kept = output(run, 1, Stage.STAGE_JUDGE, 'pairs.jsonl');
    // Each pair is its prompt's shortest against its longest response, often not the first two.
    const lengths = (i: number) => (responses[i].responses as string[]).map((r) => r.length);
    for (const p of judged) {
      expect(String(p.chosen).length).toBe(Math.min(...lengths(Number(p.prompt_index))));
      expect(String(p.rejected).length).toBe(Math.max(...lengths(Number(p.prompt_index))));
    }
    const firstTwo = (p: Line) => (responses[Number(p.prompt_index)].responses as string[]).slice(0, 2);
    expect(judged.some((p) => !firstTwo(p).includes(String(p.chosen)) || !firstTwo(p).includes(String(p.rejected)))).toBe(true);
    // The filter keeps the ceil(P / 2) largest margins, in prompt order.
    expect(kept).toHaveLength(Math.ceil(judged.length / 2));
    const smallestKept = Math.min(...kept.map((p) => Number(p.margin)));
    const droppedMargins = judged.filter((p) => !kept.some((k) => k.prompt_index === p.prompt_index)).map((p) => Number(p.margin));
    expect(droppedMargins.every((d) => d <= smallestKept)).toBe(true);
    expect(metricsOf(run, 1)['judge/filtered_low_confidence']).toBe(judged.length - kept.length);
  });

  it('fails the round when nothing answers there, naming the address', async () => {
    const port = await freePort();
    const h = harness(makeWorkspace(), undefined, { executors: { roundJudge: roundJudge() } });
    const run = await runToEnd(h, external({ judgeAddress: `127.0.0.1:${port}` }));
    expect(run.state).toBe(JobState.JOB_STATE_FAILED);
    expect(run.error).toMatch(new RegExp(`^round 1 JUDGE: judge of judge_address at 127\\.0\\.0\\.1:${port} unavailable after 2 attempts`));
    expect(run.stages.find((s) => s.round === 1 && s.stage === Stage.STAGE_GENERATE)?.state).toBe(JobState.JOB_STATE_SUCCEEDED);
  });
});

describe('judge_address validation', () => {
  const ws = makeWorkspace();
  afterAll(() => ws.cleanup());
  const errorOf = async (overrides: SpecPartial): Promise<InvalidArgumentError | undefined> => {
    try {
      await validateSpec(validSpec(ws, overrides));
      return undefined;
    } catch (error) {
      if (error instanceof InvalidArgumentError) return error;
      throw error;
    }
  };

  it('takes a host:port with the rule the judge answers to, for any self-annotating configuration', async () => {
    expect(await errorOf({ judgeAddress: '127.0.0.1:50071', judgeRule: 'my/rule' })).toBeUndefined();
    const iterDpoJudge = { configuration: Configuration.CONFIGURATION_ITER_DPO_JUDGE, judgeMethod: JudgeMethod.JUDGE_METHOD_RULE };
    const bestWorst = { pairing: Pairing.PAIRING_BEST_WORST, generation: { n: 3, temperature: 0.7, maxNewTokens: 32 } };
    expect(await errorOf({ judgeAddress: 'judge.team.svc:443', judgeRule: 'my/rule', ...iterDpoJudge, ...bestWorst })).toBeUndefined();
  });

  it.each([
    [{ judgeAddress: 'localhost', judgeRule: 'r' }, 'spec.judge_address', "must be host:port (e.g. 127.0.0.1:50071) of a service implementing alignment.v1.Judge, got 'localhost'"],
    [{ judgeAddress: 'http://127.0.0.1:1', judgeRule: 'r' }, 'spec.judge_address', 'must be host:port'],
    [{ judgeAddress: '127.0.0.1:1' }, 'spec.judge_rule', 'is required with judge_address'],
    [{ judgeAddress: '127.0.0.1:1', judgeRule: 'r', judgeMethod: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT }, 'spec.judge_method', 'JUDGE_METHOD_RULE requests'],
    [{ judgeAddress: '127.0.0.1:1', judgeRule: 'r', judgeModel: { onnx: { uri: '/m' } } }, 'spec.judge_model', 'not used with judge_address'],
    [{ judgeAddress: '127.0.0.1:1', judgeRule: 'r', frozenJudge: true }, 'spec.frozen_judge', 'judge at judge_address'],
    [{ judgeAddress: '127.0.0.1:1', judgeRule: 'r', configuration: Configuration.CONFIGURATION_DPO_SEED }, 'spec.judge_address', 'not CONFIGURATION_DPO_SEED'],
    [{ judgeRule: 'r' }, 'spec.judge_rule', 'only used with judge_address'],
  ] as Array<[SpecPartial, string, string]>)('refuses %j naming %s', async (overrides, field, message) => {
    const error = await errorOf(overrides);
    expect(error?.field).toBe(field);
    expect(error?.message).toContain(message);
  });
});
