// RunSpec.unfinished_pairs / unfinished_penalty (fields 24-25; docs/algorithm.md §7, TRL's missing_eos_penalty): the
// spec's checks, what the JUDGE stage asks the judge, the per-round metrics, and that the default (DROP, the judge's
// own default) adds nothing to the stage's inputs, so runs that leave it unset keep their fingerprints.
import { Configuration, JobState, JudgeMethod, RunSpec, UnfinishedPairs, type JudgePairsRequest, type JudgePairsResult } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { artifactShas, closeHarnesses, harness, runToEnd, type Harness } from '../../testing/engine-harness';
import { makeWorkspace, validSpec } from '../../testing/run-fixtures';
import { validateSpec } from './run-spec';
import { StageOutputs } from './stages';
import { judgeStage } from './stages/judge';

afterAll(closeHarnesses);

const roundJudgeCalls = (h: Harness): JudgePairsRequest[] => h.fakes.judge.calls.filter((c) => c.method !== JudgeMethod.JUDGE_METHOD_RULE);

describe('unfinished_pairs validation', () => {
  const ws = makeWorkspace();
  afterAll(() => ws.cleanup());
  async function errorOf(overrides: Parameters<typeof validSpec>[1]): Promise<InvalidArgumentError | 'valid'> {
    try {
      await validateSpec(validSpec(ws, overrides));
      return 'valid';
    } catch (error) {
      if (error instanceof InvalidArgumentError) return error;
      throw error;
    }
  }

  it('rejects a negative or non-finite penalty, naming the field', async () => {
    const negative = await errorOf({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE, unfinishedPenalty: -0.5 });
    expect(negative).toBeInstanceOf(InvalidArgumentError);
    expect((negative as InvalidArgumentError).field).toBe('spec.unfinished_penalty');
    expect((negative as InvalidArgumentError).message).toMatch(/must be greater than or equal to 0, got -0.5/);
    const nan = await errorOf({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE, unfinishedPenalty: NaN });
    expect((nan as InvalidArgumentError).field).toBe('spec.unfinished_penalty');
  });

  it('rejects a penalty without PENALIZE, an unknown policy, and the fields on a seed-only configuration', async () => {
    expect(((await errorOf({ unfinishedPenalty: 1 })) as InvalidArgumentError).field).toBe('spec.unfinished_penalty');
    expect(((await errorOf({ unfinishedPairs: 7 as UnfinishedPairs })) as InvalidArgumentError).field).toBe('spec.unfinished_pairs');
    const seedOnly = await errorOf({ configuration: Configuration.CONFIGURATION_DPO_SEED, unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP });
    expect((seedOnly as InvalidArgumentError).field).toBe('spec.unfinished_pairs');
  });

  it('accepts each policy, and PENALIZE with or without a penalty', async () => {
    for (const policy of [UnfinishedPairs.UNFINISHED_PAIRS_DROP, UnfinishedPairs.UNFINISHED_PAIRS_KEEP, UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE]) {
      expect(await errorOf({ unfinishedPairs: policy })).toBe('valid');
    }
    expect(await errorOf({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE, unfinishedPenalty: 0 })).toBe('valid');
  });
});

describe('unfinished_pairs in the JUDGE stage', () => {
  it('adds no stage input by default or with DROP; KEEP adds the policy, PENALIZE the policy and its penalty', () => {
    const outputs = new StageOutputs();
    const inputs = (overrides: Parameters<typeof RunSpec.fromPartial>[0]) =>
      Object.keys(judgeStage.inputs(RunSpec.fromPartial({ configuration: Configuration.CONFIGURATION_SPA, ...overrides }), 1, outputs)).sort();
    expect(inputs({})).toEqual(['policy', 'responses']);
    expect(inputs({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_DROP })).toEqual(['policy', 'responses']);
    expect(inputs({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP })).toEqual(['policy', 'responses', 'unfinishedPairs']);
    expect(inputs({ unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE })).toEqual(['policy', 'responses', 'unfinishedPairs', 'unfinishedPenalty']);
  });

  it('sends the policy to the judge only when it is not the default, and reports the judge’s counts per round', async () => {
    const h = harness();
    const fake = h.fakes.judge;
    const judge = fake.judgePairs.bind(fake);
    // The fake generator's responses all finish; the judge's counts are what the coordinator must report.
    fake.judgePairs = async (request, ctx): Promise<JudgePairsResult> => ({ ...(await judge(request, ctx)), unfinished: { dropped: 3, inPairs: 2 } });
    const plain = await runToEnd(h, {}, 'plain');
    const penalized = await runToEnd(h, { unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE, unfinishedPenalty: 0.25 }, 'penalized');
    const kept = await runToEnd(h, { unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP }, 'kept');
    expect([plain.state, penalized.state, kept.state]).toEqual([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_SUCCEEDED]);
    const calls = roundJudgeCalls(h);
    expect(calls.map((c) => [c.unfinishedPairs, c.unfinishedPenalty])).toEqual([
      [undefined, undefined],
      [undefined, undefined],
      [UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE, 0.25],
      [UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE, 0.25],
      [UnfinishedPairs.UNFINISHED_PAIRS_KEEP, undefined],
      [UnfinishedPairs.UNFINISHED_PAIRS_KEEP, undefined],
    ]);
    for (const round of [1, 2]) {
      const metrics = plain.rounds.find((r) => r.round === round)!.metrics;
      expect([metrics['judge/dropped_unfinished'], metrics['judge/unfinished_in_pairs']]).toEqual([3, 2]);
    }
    // The fake judge labels the same pairs whatever the policy: the artifacts are the same, the stages re-ran.
    expect(artifactShas(h, 'kept')).toEqual(artifactShas(h, 'plain'));
  });
});
