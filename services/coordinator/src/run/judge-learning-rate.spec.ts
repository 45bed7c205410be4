// RunSpec.judge_learning_rate (docs/algorithm.md §7): the frozen judge π_J trained beside π_0 at its own rate, through
// the engine with in-process fake executors: the jobs round 0 runs, which model judges each round, what the policy
// trains from, the metrics, and retention keeping what the judge reads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toLocalPath } from '@alignment/artifacts';
import { JobState, JudgeMethod, type JudgePairsRequest } from '@alignment/contracts';
import { artifactShas, closeHarnesses, harness, preferenceOf, runToEnd, type Harness } from '../../testing/engine-harness';
import { makeWorkspace } from '../../testing/run-fixtures';
import { deriveSeed } from './seeds';

afterAll(closeHarnesses);

const roundJudgeCalls = (h: Harness): JudgePairsRequest[] => h.fakes.judge.calls.filter((c) => c.method !== JudgeMethod.JUDGE_METHOD_RULE);
describe('judge_learning_rate: the frozen judge trained apart from the policy', () => {
  it('round 0 trains π_0 at seed_training.learning_rate and π_J at the judge rate, and π_J judges every round', async () => {
    const h = harness();
    const run = await runToEnd(h, { frozenJudge: true, judgeLearningRate: 7e-6 }, 'split');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    // Round 0: two jobs, same seed pairs, same init (π_init), same seed; only the learning rate differs.
    const [policyJob, judgeJob, ...rounds] = h.fakes.learn.calls;
    expect(policyJob.jobId).toMatch(/-r0-learn-a1$/);
    expect(judgeJob.jobId).toMatch(/-r0-judge-a1$/);
    expect(judgeJob.spec.hparams?.learningRate).toBe(7e-6);
    expect(policyJob.spec.hparams?.learningRate).not.toBe(7e-6);
    expect(preferenceOf(judgeJob.spec).pairs).toEqual(preferenceOf(policyJob.spec).pairs);
    expect(preferenceOf(judgeJob.spec).init).toEqual(preferenceOf(policyJob.spec).init);
    expect(judgeJob.spec.hparams?.seed).toBe(policyJob.spec.hparams?.seed);
    expect(toLocalPath(judgeJob.spec.outputUri)).toBe(path.join(h.dataDir, 'runs', 'split', 'round-0', 'learn', 'judge-attempt-1'));
    expect(rounds).toHaveLength(2);

    // The judge's policy is π_J in both rounds; the reference stays π_init; round 1 trains from π_0, not π_J.
    const shas = artifactShas(h, 'split');
    expect(shas['round-0 learn judge_model.onnx']).toBeDefined();
    expect(shas['round-0 learn judge_model.onnx']).not.toBe(shas['round-0 learn model.onnx']);
    const [round1, round2] = roundJudgeCalls(h);
    expect(round1.spaImplicit?.policy?.onnx?.sha256).toBe(shas['round-0 learn judge_model.onnx']);
    expect(round2.spaImplicit?.policy?.onnx?.sha256).toBe(shas['round-0 learn judge_model.onnx']);
    expect(round2.spaImplicit?.reference?.onnx?.uri).toBe(`file://${h.ws.onnx}`);
    expect(preferenceOf(rounds[0].spec).init?.sha256).toBe(shas['round-0 learn model.hf_checkpoint']);
    const generate1 = h.fakes.generate.calls.find((c) => c.params?.seed === deriveSeed(7, 1, 'GENERATE'))!;
    expect(generate1.model?.onnx?.sha256).toBe(shas['round-0 learn model.onnx']);

    // The judge job's metrics are reported beside the policy job's, under judge_model/.
    const metrics = run.rounds.find((r) => r.round === 0)!.metrics;
    expect(Object.keys(metrics).some((k) => k.startsWith('judge_model/'))).toBe(true);
    expect(Object.keys(metrics).some((k) => k.startsWith('train/'))).toBe(true);
  });

  it('a frozen judge alone keeps judging with π_0, and the judge rate changes only what depends on it', async () => {
    const h = harness();
    await runToEnd(h, { frozenJudge: true }, 'frozen');
    expect(h.fakes.learn.calls.map((c) => c.jobId).filter((id) => id.includes('-judge-'))).toEqual([]);
    const frozen = artifactShas(h, 'frozen');
    await runToEnd(h, { frozenJudge: true, judgeLearningRate: 7e-6 }, 'split');
    const split = artifactShas(h, 'split');
    // π_0 is the same model in both runs (the judge job is beside it); the rounds' pairs differ with the judge.
    expect(split['round-0 learn model.onnx']).toBe(frozen['round-0 learn model.onnx']);
    expect(split['round-1 generate responses']).toBeDefined();
    expect(split['round-1 generate responses']).toBe(frozen['round-1 generate responses']);
    expect(split['round-1 judge pairs']).toBeDefined();
    expect(split['round-1 judge pairs']).not.toBe(frozen['round-1 judge pairs']);
  });

  it('keep_last_checkpoints keeps the model a frozen judge reads: π_0, or π_J beside a pruned π_0', async () => {
    const h = harness(makeWorkspace({ rounds: 3 }));
    const modelDirs = (runId: string, round: number) => fs.readdirSync(path.join(h.dataDir, 'runs', runId, `round-${round}`, 'learn')).filter((d) => /attempt-/.test(d));
    const hasOnnx = (runId: string, round: number, dir: string) => fs.existsSync(path.join(h.dataDir, 'runs', runId, `round-${round}`, 'learn', dir, 'onnx'));

    const frozen = await runToEnd(h, { frozenJudge: true, keepLastCheckpoints: 1 }, 'frozen-kept');
    expect(frozen.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect([0, 1, 2, 3].map((round) => hasOnnx('frozen-kept', round, 'attempt-1'))).toEqual([true, false, false, true]);

    const split = await runToEnd(h, { frozenJudge: true, judgeLearningRate: 7e-6, keepLastCheckpoints: 1 }, 'split-kept');
    expect(split.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(modelDirs('split-kept', 0).sort()).toEqual(['attempt-1', 'judge-attempt-1']);
    expect(hasOnnx('split-kept', 0, 'attempt-1')).toBe(false);
    expect(hasOnnx('split-kept', 0, 'judge-attempt-1')).toBe(true);
  });
});
