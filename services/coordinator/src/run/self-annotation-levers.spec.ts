// The self-annotation levers of RunSpec (fields 19-23 and 32-35, field 36 in round-gold-labels.spec.ts; docs/algorithm.md §7) through the engine with in-process fake
// executors: what the judge is asked, what each round trains on, the metrics, and that the levers left unset change
// no stage's inputs (so existing runs keep their fingerprints and artifacts).
import * as fs from 'node:fs';
import { toLocalPath } from '@alignment/artifacts';
import { Configuration, JobState, JudgeMethod, Pairing, RunSpec, Stage, type JudgePairsRequest, type Run } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { artifactShas, closeHarnesses, harness, runToEnd, stageRuns, type Harness } from '../../testing/engine-harness';
import { makeWorkspace, validSpec } from '../../testing/run-fixtures';
import { drawReplay, keepMostConfident, marginScale, replayCount } from './self-label-levers';
import { validateSpec } from './run-spec';
import { deriveSeed } from './seeds';
import { StageOutputs } from './stages';
import { generateStage } from './stages/generate';
import { judgeStage } from './stages/judge';
import { learnStage } from './stages/learn';

afterAll(closeHarnesses);

type Line = Record<string, unknown>;
const readLines = (uri: string): Line[] => fs.readFileSync(toLocalPath(uri), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const stageOutput = (run: Run, round: number, stage: Stage, name: string) => {
  const record = run.stages.find((s) => s.round === round && s.stage === stage)!;
  return record.outputs.find((o) => toLocalPath(o.uri).endsWith(name))!;
};
/** The rounds' judge calls (the evaluations' RULE calls left out), in order. */
const roundJudgeCalls = (h: Harness): JudgePairsRequest[] => h.fakes.judge.calls.filter((c) => c.method !== JudgeMethod.JUDGE_METHOD_RULE);
const trainedPairs = (h: Harness, call: number) => {
  const spec = h.fakes.learn.calls[call].spec;
  return spec.kind?.$case === 'preference' ? spec.kind.value.pairs! : undefined!;
};
const metricsOf = (run: Run, round: number) => run.rounds.find((r) => r.round === round)!.metrics;

describe('judge_tie_margin (issue 11 defect 2: β reaches the tie test)', () => {
  it('is sent as the tie tolerance, in β·(s1 − s2) units, and drops exactly the pairs below it', async () => {
    const h = harness(makeWorkspace({ promptsPerRound: 20 }));
    const plain = await runToEnd(h, {}, 'plain');
    const margined = await runToEnd(h, { judgeTieMargin: 0.03 }, 'margined');
    expect(margined.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const calls = roundJudgeCalls(h);
    expect(calls.slice(0, 2).map((c) => c.spaImplicit?.tieTolerance)).toEqual([0, 0]);
    expect(calls.slice(2).map((c) => c.spaImplicit?.tieTolerance)).toEqual([0.03, 0.03]);

    // Round 1 judges the same responses in both runs (round 0 is the same): the margin drops exactly the pairs with
    // 0.1·margin < 0.03 (β defaults to 0.1).
    const pairs = readLines(stageOutput(plain, 1, Stage.STAGE_JUDGE, 'pairs.jsonl').uri);
    const below = pairs.filter((p) => 0.1 * Number(p.margin) < 0.03).length;
    expect(below).toBeGreaterThan(0);
    expect(metricsOf(plain, 1)['judge/dropped_ties']).toBe(0);
    expect(metricsOf(margined, 1)['judge/dropped_ties']).toBe(below);
    expect(metricsOf(margined, 1)['judge/num_pairs']).toBe(pairs.length - below);
  });

  it('judge/mean_margin is in implicit-reward units: β times the mean raw margin of the pairs file', async () => {
    const h = harness();
    for (const [runId, beta] of [['default-beta', undefined], ['beta-half', 0.5]] as const) {
      const run = await runToEnd(h, { loss: { beta, dndLambdaSchedule: [] } }, runId);
      const pairs = readLines(stageOutput(run, 1, Stage.STAGE_JUDGE, 'pairs.jsonl').uri);
      const raw = pairs.reduce((sum, p) => sum + Number(p.margin), 0) / pairs.length;
      expect(metricsOf(run, 1)['judge/mean_margin']).toBeCloseTo((beta ?? 0.1) * raw, 12);
    }
  });

  it('marginScale is β for the SPA judge and 1 for the others', () => {
    const spec = RunSpec.fromPartial({ loss: { beta: 0.3 } });
    expect(marginScale(JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, spec)).toBe(0.3);
    expect(marginScale(JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, RunSpec.fromPartial({}))).toBe(0.1);
    expect(marginScale(JudgeMethod.JUDGE_METHOD_REWARD_MODEL, spec)).toBe(1);
  });
});

describe('frozen_judge', () => {
  it("judges every round with round 0's model against π_init; generation still samples π_{t−1}", async () => {
    const h = harness();
    const run = await runToEnd(h, { frozenJudge: true }, 'frozen');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const shas = artifactShas(h, 'frozen');
    const [round1, round2] = roundJudgeCalls(h);
    expect(round1.spaImplicit?.policy?.onnx?.sha256).toBe(shas['round-0 learn model.onnx']);
    expect(round2.spaImplicit?.policy?.onnx?.sha256).toBe(shas['round-0 learn model.onnx']);
    expect(round2.spaImplicit?.reference?.onnx?.uri).toBe(`file://${h.ws.onnx}`);
    const generate2 = h.fakes.generate.calls.find((c) => c.params?.seed === deriveSeed(7, 2, 'GENERATE'))!;
    expect(generate2.model?.onnx?.sha256).toBe(shas['round-1 learn model.onnx']);

    await runToEnd(h, {}, 'moving');
    expect(roundJudgeCalls(h)[3].spaImplicit?.policy?.onnx?.sha256).toBe(artifactShas(h, 'moving')['round-1 learn model.onnx']);
  });
});

describe('seed_replay_fraction', () => {
  it("trains each round on its self-labelled pairs plus round(fraction · P) seed pairs, marked source: 'seed'", async () => {
    const h = harness();
    const run = await runToEnd(h, { seedReplayFraction: 0.5 });
    for (const round of [1, 2]) {
      const judged = readLines(stageOutput(run, round, Stage.STAGE_JUDGE, 'pairs.jsonl').uri);
      const trained = readLines(trainedPairs(h, round).uri);
      const replayed = trained.slice(judged.length);
      expect(trained.slice(0, judged.length)).toEqual(judged);
      expect(replayed).toHaveLength(Math.round(0.5 * judged.length));
      expect(metricsOf(run, round)['data/replayed_seed_pairs']).toBe(replayed.length);
      const seeds = readLines(`file://${h.ws.seedPairs}`).map((p) => JSON.stringify(p));
      for (const pair of replayed) {
        const { source, ...seedPair } = pair;
        expect(source).toBe('seed');
        expect(seeds).toContain(JSON.stringify(seedPair));
      }
      expect(trainedPairs(h, round).sha256).toBe(stageOutput(run, round, Stage.STAGE_LEARN, 'training_pairs.jsonl').sha256);
    }
  });

  it('replays the seed pairs as round 0 trained on them (flipped by label noise), at most all of them', async () => {
    const h = harness(makeWorkspace({ seedPairs: 4 }));
    const run = await runToEnd(h, { seedReplayFraction: 1, labelNoiseRate: 0.49 });
    const noisy = readLines(stageOutput(run, 0, Stage.STAGE_LEARN, 'seed_pairs.noisy.jsonl').uri);
    const trained = readLines(trainedPairs(h, 1).uri);
    const replayed = trained.filter((p) => p.source === 'seed').map(({ source: _source, ...p }) => p);
    expect(metricsOf(run, 0)['data/flipped_pairs']).toBe(2);
    expect(replayed).toEqual(noisy);
  });

  it('replayCount and drawReplay: min(round(f · P), S) pairs, deterministic in the seed, in seed-file order', () => {
    expect(replayCount(0.5, 7, 100)).toBe(4);
    expect(replayCount(0.25, 10, 100)).toBe(3);
    expect(replayCount(1, 10, 4)).toBe(4);
    expect(replayCount(0, 10, 4)).toBe(0);
    const seeds = Array.from({ length: 10 }, (_, i) => ({ prompt: `p${i}`, chosen: `c${i}`, rejected: `r${i}`, id: i }));
    const drawn = drawReplay(seeds, 4, 11);
    expect(drawn).toEqual(drawReplay(seeds, 4, 11));
    expect(drawn).toHaveLength(4);
    const indices = drawn.map((p) => Number(String(p.prompt).slice(1)));
    expect([...indices].sort((a, b) => a - b)).toEqual(indices);
    expect(drawn[0]).toEqual({ prompt: `p${indices[0]}`, chosen: `c${indices[0]}`, rejected: `r${indices[0]}`, source: 'seed' });
  });
});

describe('confidence_keep_fraction', () => {
  it('keeps the top fraction of the judged pairs by margin for LEARN, and reports how many it dropped', async () => {
    const h = harness();
    const run = await runToEnd(h, { confidenceKeepFraction: 0.5 });
    const judged = readLines(stageOutput(run, 1, Stage.STAGE_JUDGE, 'judged_pairs.jsonl').uri);
    const kept = readLines(stageOutput(run, 1, Stage.STAGE_JUDGE, '/pairs.jsonl').uri);
    expect(kept).toHaveLength(Math.ceil(0.5 * judged.length));
    const threshold = Math.min(...kept.map((p) => Number(p.margin)));
    expect(judged.filter((p) => Number(p.margin) > threshold)).toHaveLength(kept.length - 1);
    expect(kept.map((p) => p.prompt_index)).toEqual([...kept.map((p) => Number(p.prompt_index))].sort((a, b) => a - b));
    expect(metricsOf(run, 1)['judge/filtered_low_confidence']).toBe(judged.length - kept.length);
    expect(metricsOf(run, 1)['judge/num_pairs']).toBe(judged.length);
    expect(readLines(trainedPairs(h, 1).uri)).toEqual(kept);
  });

  it('keepMostConfident: ceil(f · P) largest |margin|, the earlier prompt on equal margins, in prompt order', () => {
    const pairs = [0.5, 0.1, 0.9, 0.5, 0.3].map((margin, i) => ({ prompt_index: i, margin }));
    expect(keepMostConfident(pairs, 0.5)).toEqual({ kept: [pairs[0], pairs[2], pairs[3]], dropped: 2 });
    expect(keepMostConfident(pairs, 0.4)).toEqual({ kept: [pairs[0], pairs[2]], dropped: 3 });
    expect(keepMostConfident(pairs, 1).kept).toEqual(pairs);
    expect(keepMostConfident(pairs, 0.01).kept).toEqual([pairs[2]]);
  });
});

describe('pairing', () => {
  it('best-vs-worst samples generation.n responses per prompt and asks the judge for PAIRING_BEST_WORST', async () => {
    const h = harness();
    const run = await runToEnd(h, { pairing: Pairing.PAIRING_BEST_WORST, generation: { n: 4, temperature: 0.7, maxNewTokens: 32 } }, 'best-worst');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(roundJudgeCalls(h).map((c) => c.pairing)).toEqual([Pairing.PAIRING_BEST_WORST, Pairing.PAIRING_BEST_WORST]);
    const responses = readLines(stageOutput(run, 1, Stage.STAGE_GENERATE, 'responses.jsonl').uri);
    expect(responses.every((r) => (r.responses as string[]).length === 4)).toBe(true);

    await runToEnd(h, {}, 'first-two');
    expect(roundJudgeCalls(h).slice(2).map((c) => c.pairing)).toEqual([undefined, undefined]);
  });
});

describe('levers at their defaults', () => {
  it('add no stage input, so existing runs keep their fingerprints; set, each is a declared input', () => {
    const ws = makeWorkspace();
    const outputs = new StageOutputs();
    const keys = (spec: RunSpec) => ({
      judge: Object.keys(judgeStage.inputs(spec, 2, outputs)),
      learn: Object.keys(learnStage.inputs(spec, 2, outputs)),
    });
    const defaults = { judgeTieMargin: 0, frozenJudge: false, seedReplayFraction: 0, confidenceKeepFraction: 1, pairing: Pairing.PAIRING_UNSPECIFIED };
    expect(keys(validSpec(ws))).toEqual({ judge: ['responses', 'policy'], learn: ['pairs', 'init'] });
    expect(keys(validSpec(ws, defaults))).toEqual({ judge: ['responses', 'policy'], learn: ['pairs', 'init'] });
    const levers = { judgeTieMargin: 0.05, seedReplayFraction: 0.25, confidenceKeepFraction: 0.8, pairing: Pairing.PAIRING_BEST_WORST };
    expect(keys(validSpec(ws, levers))).toEqual({
      judge: ['responses', 'policy', 'tieMargin', 'confidenceKeepFraction', 'pairing'],
      learn: ['pairs', 'init', 'replayFraction', 'seedPairs'],
    });
    // GENERATE's sampler: π_{t−1} from the last LEARN (none in this execution), or π_init by its ONNX export.
    const sampler = (spec: RunSpec) => generateStage.inputs(spec, 2, outputs).model.identity;
    expect(sampler(validSpec(ws))).toBe('');
    expect(sampler(validSpec(ws, { sampleFromInit: true }))).toBe(validSpec(ws).baseModel!.onnx!.uri);
    expect(keys(validSpec(ws, { roundLabelNoiseRate: 0 })).judge).toEqual(['responses', 'policy']);
    expect(keys(validSpec(ws, { roundLabelNoiseRate: 0.2 })).judge).toEqual(['responses', 'policy', 'labelNoiseRate']);
    ws.cleanup();
  });

  it('with every lever set, a run stopped after round 1 JUDGE resumes at round 1 LEARN with the same artifacts', async () => {
    const levers = {
      judgeTieMargin: 0.01,
      frozenJudge: true,
      seedReplayFraction: 0.5,
      confidenceKeepFraction: 0.8,
      pairing: Pairing.PAIRING_BEST_WORST,
      generation: { n: 3, temperature: 0.7, maxNewTokens: 32 },
      configuration: Configuration.CONFIGURATION_WDRO,
      loss: { dndLambdaSchedule: [], wdro: { delta: 0.1, radius: { $case: 'rho' as const, value: 0.2 } } },
    };
    const h = harness();
    let done = 0;
    await h.engine.startRun({ runId: 'run-1', spec: validSpec(h.ws, levers) });
    const watch = h.engine.watch('run-1', (e) => {
      if (e.kind === 'stage' && e.state === JobState.JOB_STATE_SUCCEEDED && ++done === 4) void h.engine.stop();
    });
    await h.engine.settled('run-1');
    watch.unsubscribe();

    const next = h.restart();
    expect(next.engine.resumeAll()).toEqual(['run-1']);
    const unsubscribe = next.engine.watch('run-1', (e) => next.events.push(e)).unsubscribe;
    await next.engine.settled('run-1');
    unsubscribe();
    expect(next.engine.getRun('run-1').state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(stageRuns(next.events)).toEqual(['1 STAGE_LEARN', '1 STAGE_EVALUATE', '2 STAGE_GENERATE', '2 STAGE_JUDGE', '2 STAGE_LEARN', '2 STAGE_EVALUATE']);
    await runToEnd(next, levers, 'reference');
    expect(artifactShas(next, 'run-1')).toEqual(artifactShas(next, 'reference'));
  });
});

describe('levers of the rounds only', () => {
  it.each([
    ['anchored_reference', { anchoredReference: true }],
    ['sample_from_init', { sampleFromInit: true }],
    ['round_label_noise_rate', { roundLabelNoiseRate: 0.2 }],
  ])('%s is refused for a configuration without self-annotation rounds, naming the field', async (field, lever) => {
    const ws = makeWorkspace();
    const error = await validateSpec(validSpec(ws, { configuration: Configuration.CONFIGURATION_DPO_SEED, ...lever })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe(`spec.${field}`);
    expect((error as InvalidArgumentError).message).toContain(`invalid spec.${field}: is only used by configurations with self-annotation rounds, not CONFIGURATION_DPO_SEED`);
    await expect(validateSpec(validSpec(ws, lever))).resolves.toBeDefined();
    ws.cleanup();
  });
});
