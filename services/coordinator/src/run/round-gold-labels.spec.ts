// RunSpec.round_gold_labels (docs/algorithm.md §7): a few of each round's prompts go to a gold annotator over real
// gRPC on loopback (testing/shorter-judge-server.ts: it prefers the shorter response), its labels replace the round
// judge's there, the round judge's agreement with it is reported, and min_self_agreement / discard_self_labels decide
// whether the self-labels are trained on at all.
import { Configuration, JobState, JudgeMethod, Stage, type Run } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { createLogger } from '@alignment/service-kit';
import { closeHarnesses, harness, runToEnd } from '../../testing/engine-harness';
import { makeWorkspace, validSpec, type SpecPartial } from '../../testing/run-fixtures';
import { roundJudgeClients, roundMetrics, stageOutputLines } from '../../testing/round-judge-clients';
import { ShorterJudgeServer } from '../../testing/shorter-judge-server';
import { goldPromptIndices, keepsSelfLabels, mergeGoldLabels, selfGoldAgreement } from './round-gold-labels';
import { flipRoundLabels } from './label-noise';
import { validateSpec } from './run-spec';
import { deriveSeed } from './seeds';

const pair = (i: number, chosen: string, rejected: string) => ({ prompt_index: i, prompt: `p${i}`, chosen, rejected, margin: 1 });

describe('round gold labels: the mechanics', () => {
  it('asks min(k, count) distinct prompts, ascending, the same for the same seed and not for another', () => {
    const a = goldPromptIndices(50, 7, 11);
    expect(a).toHaveLength(7);
    expect(new Set(a).size).toBe(7);
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    expect(a.every((i) => Number.isInteger(i) && i >= 0 && i < 50)).toBe(true);
    expect(goldPromptIndices(50, 7, 11)).toEqual(a);
    expect(goldPromptIndices(50, 7, 12)).not.toEqual(a);
    expect(goldPromptIndices(3, 7, 11)).toEqual([0, 1, 2]);
    expect(() => goldPromptIndices(3, 0, 11)).toThrow('pairs_per_round');
  });

  it('compares only the prompts both labelled with the same two responses', () => {
    const self = [pair(0, 'a', 'b'), pair(1, 'c', 'd'), pair(2, 'e', 'f'), pair(3, 'g', 'h')];
    // 0: agrees; 1: same two responses, the other way round; 2: another pair (best-vs-worst); 4: the judge dropped it.
    const gold = [pair(0, 'a', 'b'), pair(1, 'd', 'c'), pair(2, 'e', 'x'), pair(4, 'i', 'j')];
    expect(selfGoldAgreement(self, gold)).toEqual({ compared: 2, agreed: 1 });
    expect(selfGoldAgreement(self, [])).toEqual({ compared: 0, agreed: 0 });
  });

  it('keeps the self-labels unless discarded, or below the threshold, or with nothing compared', () => {
    expect(keepsSelfLabels({ compared: 0, agreed: 0 }, undefined, false)).toBe(true);
    expect(keepsSelfLabels({ compared: 10, agreed: 10 }, undefined, true)).toBe(false);
    expect(keepsSelfLabels({ compared: 10, agreed: 7 }, 0.7, false)).toBe(true);
    expect(keepsSelfLabels({ compared: 10, agreed: 6 }, 0.7, false)).toBe(false);
    expect(keepsSelfLabels({ compared: 0, agreed: 0 }, 0, false)).toBe(false);
  });

  it('replaces the judge on every asked prompt, a gold tie included, and keeps prompt order', () => {
    const self = [pair(0, 'a', 'b'), pair(1, 'c', 'd'), pair(2, 'e', 'f'), pair(5, 'k', 'l')];
    const gold = [pair(1, 'd', 'c'), pair(4, 'i', 'j')];
    // Asked 1, 2 and 4: the annotator called 2 a tie, so prompt 2 has no pair at all.
    const merged = mergeGoldLabels(self, gold, [1, 2, 4], true);
    expect(merged.map((p) => [p.prompt_index, p.chosen, p.source])).toEqual([
      [0, 'a', undefined],
      [1, 'd', 'gold'],
      [4, 'i', 'gold'],
      [5, 'k', undefined],
    ]);
    expect(mergeGoldLabels(self, gold, [1, 2, 4], false).map((p) => p.prompt_index)).toEqual([1, 4]);
  });
});

let annotator: ShorterJudgeServer;
const rpc = roundJudgeClients(createLogger('round-gold-labels-test'));
const roundJudge = () => rpc.roundJudge();
beforeAll(async () => {
  annotator = await ShorterJudgeServer.start('gold/shorter');
});
afterAll(async () => {
  closeHarnesses();
  rpc.close();
  await annotator.shutdown();
});

const output = (run: Run, round: number, name: string) => stageOutputLines(run, round, Stage.STAGE_JUDGE, name);
const metricsOf = roundMetrics;

describe('round_gold_labels through a run', () => {
  const gold = (extra: Record<string, unknown> = {}): SpecPartial => ({
    roundGoldLabels: { annotatorAddress: annotator.address, rule: 'gold/shorter', pairsPerRound: 5, ...extra },
  });

  it('sends the asked prompts to the annotator, trains on its labels there and the judge elsewhere, and reports the agreement', async () => {
    const h = harness(makeWorkspace({ promptsPerRound: 12 }), undefined, { executors: { roundJudge: roundJudge() } });
    const before = annotator.calls.length;
    const run = await runToEnd(h, gold());
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const calls = annotator.calls.slice(before);
    expect(calls).toHaveLength(2);
    for (const c of calls) expect([c.method, c.rule?.rule, c.spaImplicit]).toEqual([JudgeMethod.JUDGE_METHOD_RULE, 'gold/shorter', undefined]);

    for (const round of [1, 2]) {
      const asked = goldPromptIndices(12, 5, deriveSeed(7, round, 'round-gold-labels'));
      const judged = output(run, round, 'judged_pairs.jsonl');
      const goldPairs = output(run, round, 'gold_pairs.jsonl');
      const trained = output(run, round, 'pairs.jsonl');
      expect(goldPairs.length).toBeGreaterThan(0);
      for (const p of goldPairs) {
        expect(asked).toContain(p.prompt_index);
        expect(String(p.chosen).length).toBeLessThan(String(p.rejected).length);
      }
      // Every gold pair is trained on; the judge's pairs only on prompts nobody asked the annotator about.
      expect(trained.filter((p) => p.source === 'gold')).toEqual(goldPairs.map((p) => ({ ...p, source: 'gold' })));
      const selfTrained = trained.filter((p) => p.source !== 'gold');
      expect(selfTrained).toEqual(judged.filter((p) => !asked.includes(p.prompt_index as number)));
      expect(trained.map((p) => p.prompt_index)).toEqual([...trained.map((p) => p.prompt_index as number)].sort((a, b) => a - b));

      const m = metricsOf(run, round);
      const expected = selfGoldAgreement(judged, goldPairs);
      expect(m['judge/gold_pairs']).toBe(goldPairs.length);
      expect(m['judge/gold_compared']).toBe(expected.compared);
      if (expected.compared > 0) expect(m['judge/self_gold_agreement']).toBeCloseTo(expected.agreed / expected.compared, 12);
      expect(m['judge/self_labels_kept']).toBe(selfTrained.length);
      // Self-label accuracy is measured on the self-labels alone: the gold pairs are left out.
      const scored = stageOutputLines(run, round, Stage.STAGE_EVALUATE, 'self_labels.jsonl');
      expect(scored.map((it) => it.responses)).toEqual(selfTrained.map((p) => [p.chosen, p.rejected]));
      expect(m['judge/self_label_accuracy']).toBeGreaterThanOrEqual(0);
    }
  });

  it('trains on the gold pairs alone with discard_self_labels, and with an unreachable threshold', async () => {
    for (const extra of [{ discardSelfLabels: true }, { minSelfAgreement: 1 }]) {
      const h = harness(makeWorkspace({ promptsPerRound: 12 }), undefined, { executors: { roundJudge: roundJudge() } });
      const run = await runToEnd(h, gold(extra));
      expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      for (const round of [1, 2]) {
        const goldPairs = output(run, round, 'gold_pairs.jsonl');
        const trained = output(run, round, 'pairs.jsonl');
        const m = metricsOf(run, round);
        if (extra.minSelfAgreement === 1 && m['judge/self_gold_agreement'] === 1) continue; // the judge happened to agree on all
        expect(trained).toEqual(goldPairs.map((p) => ({ ...p, source: 'gold' })));
        expect(m['judge/self_labels_kept']).toBe(0);
        // No self-label was trained on, so there is no self-label accuracy (gold pairs would read as 1.0).
        expect(m).not.toHaveProperty(['judge/self_label_accuracy']);
      }
    }
  });

  it('flips exactly round(rate * G) gold pairs before training with label_noise_rate, keeping the annotator\'s labels in gold_pairs.jsonl', async () => {
    const h = harness(makeWorkspace({ promptsPerRound: 12 }), undefined, { executors: { roundJudge: roundJudge() } });
    const run = await runToEnd(h, gold({ pairsPerRound: 10, discardSelfLabels: true, labelNoiseRate: 0.3 }));
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    for (const round of [1, 2]) {
      const goldPairs = output(run, round, 'gold_pairs.jsonl');
      const trained = output(run, round, 'pairs.jsonl');
      // The annotator's own labels: the shorter response chosen, every one.
      for (const p of goldPairs) expect(String(p.chosen).length).toBeLessThan(String(p.rejected).length);
      const expected = flipRoundLabels(goldPairs, 0.3, deriveSeed(7, round, 'round-gold-label-noise'));
      expect(expected.flipped).toHaveLength(Math.round(0.3 * goldPairs.length));
      expect(trained).toEqual(expected.pairs.map((p) => ({ ...p, source: 'gold' })));
      const wrong = trained.filter((p) => String(p.chosen).length > String(p.rejected).length);
      expect(wrong).toHaveLength(expected.flipped.length);
      expect(metricsOf(run, round)['judge/gold_flipped']).toBe(expected.flipped.length);
    }
  });

  it('keeps every self-label at min_self_agreement 0 when a pair was compared', async () => {
    const h = harness(makeWorkspace({ promptsPerRound: 12 }), undefined, { executors: { roundJudge: roundJudge() } });
    const run = await runToEnd(h, gold({ minSelfAgreement: 0 }));
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const m = metricsOf(run, 1);
    expect(m['judge/gold_compared']).toBeGreaterThan(0);
    expect(m['judge/self_labels_kept']).toBeGreaterThan(0);
  });
});

describe('round_gold_labels validation', () => {
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
  const g = (extra: Record<string, unknown>) => ({ roundGoldLabels: { annotatorAddress: '127.0.0.1:50071', rule: 'gold', pairsPerRound: 10, ...extra } });

  it('takes an annotator, its rule and a count, with a threshold or discarding the self-labels', async () => {
    expect(await errorOf(g({}))).toBeUndefined();
    expect(await errorOf(g({ minSelfAgreement: 0.7 }))).toBeUndefined();
    expect(await errorOf(g({ discardSelfLabels: true }))).toBeUndefined();
  });

  it.each([
    [g({ annotatorAddress: '' }), 'spec.round_gold_labels.annotator_address', 'is required'],
    [g({ annotatorAddress: 'localhost' }), 'spec.round_gold_labels.annotator_address', "must be host:port (e.g. 127.0.0.1:50070) of a service implementing alignment.v1.Judge, got 'localhost'"],
    [g({ rule: ' ' }), 'spec.round_gold_labels.rule', 'is required'],
    [g({ pairsPerRound: 0 }), 'spec.round_gold_labels.pairs_per_round', ''],
    [g({ minSelfAgreement: 1.5 }), 'spec.round_gold_labels.min_self_agreement', ''],
    [g({ minSelfAgreement: 0.5, discardSelfLabels: true }), 'spec.round_gold_labels.min_self_agreement', 'set one of the two'],
    [g({ labelNoiseRate: 0.5 }), 'spec.round_gold_labels.label_noise_rate', ''],
    [g({ labelNoiseRate: -0.1 }), 'spec.round_gold_labels.label_noise_rate', ''],
    [{ ...g({}), judgeAddress: '127.0.0.1:1', judgeRule: 'r' }, 'spec.round_gold_labels', 'not used with judge_address'],
    [{ ...g({}), configuration: Configuration.CONFIGURATION_DPO_SEED }, 'spec.round_gold_labels', 'not CONFIGURATION_DPO_SEED'],
  ] as Array<[SpecPartial, string, string]>)('refuses %j naming %s', async (overrides, field, message) => {
    const error = await errorOf(overrides);
    expect(error?.field).toBe(field);
    expect(error?.message).toContain(message);
  });
});
