// The run state machine with in-process fake executors (no network): stage order, what each stage hands the next,
// resume (skipping verified stages, re-executing lost or altered ones), deterministic seeds and artifacts, label
// noise, shard merging independent of completion order, failure and cancel.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toLocalPath } from '@alignment/artifacts';
import { Configuration, JobState, PreferenceLoss, RoundPromptOverlap, RunSpec, Stage } from '@alignment/contracts';
import { artifactShas, closeHarnesses, harness, runToEnd, stageRuns, startAndWatch } from '../../testing/engine-harness';
import { Gate } from '../../testing/gate';
import { validSpec } from '../../testing/run-fixtures';
import { configurationByName, configurationPlan } from './configurations';
import { ServiceUnavailableError, StageFailedError } from './executors';
import type { RunEvent } from './run-events';
import { deriveSeed } from './seeds';

afterAll(closeHarnesses);

describe('a run', () => {
  it('executes round 0 (LEARN, EVALUATE) then GENERATE, JUDGE, LEARN, EVALUATE per round, each handing its outputs on', async () => {
    const h = harness();
    const run = await runToEnd(h);
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(stageRuns(h.events)).toEqual([
      '0 STAGE_LEARN', '0 STAGE_EVALUATE',
      '1 STAGE_GENERATE', '1 STAGE_JUDGE', '1 STAGE_LEARN', '1 STAGE_EVALUATE',
      '2 STAGE_GENERATE', '2 STAGE_JUDGE', '2 STAGE_LEARN', '2 STAGE_EVALUATE',
    ]);
    expect(run.stages.map((s) => [s.round, s.stage, s.state])).toHaveLength(10);
    expect(run.stages.every((s) => s.state === JobState.JOB_STATE_SUCCEEDED && s.outputs.every((o) => o.sha256.length === 64))).toBe(true);

    // Round 0: DPO from π_init on the seed pairs; round t: SPA from π_{t-1} (also the reference) on round t's pairs.
    const [learn0, learn1, learn2] = h.fakes.learn.calls.map((c) => c.spec);
    const pref = (spec: typeof learn0) => (spec.kind?.$case === 'preference' ? spec.kind.value : undefined)!;
    expect(pref(learn0).loss).toBe(PreferenceLoss.PREFERENCE_LOSS_DPO);
    expect(pref(learn0).init?.uri).toBe(`file://${h.ws.hfCheckpoint}`);
    expect(pref(learn0).pairs?.uri).toBe(`file://${h.ws.seedPairs}`);
    expect(pref(learn1).loss).toBe(PreferenceLoss.PREFERENCE_LOSS_SPA);
    expect(pref(learn1).spa?.dndLambda).toBe(0.5);
    expect(pref(learn2).spa?.dndLambda).toBe(0.25);
    const round = (t: number, s: Stage) => run.stages.find((r) => r.round === t && r.stage === s)!;
    expect(pref(learn1).init?.sha256).toBe(round(0, Stage.STAGE_LEARN).outputs[0].sha256);
    expect(pref(learn1).reference).toEqual(pref(learn1).init);
    expect(pref(learn2).pairs?.sha256).toBe(round(2, Stage.STAGE_JUDGE).outputs[0].sha256);
    expect(run.latestModel?.hfCheckpoint?.sha256).toBe(round(2, Stage.STAGE_LEARN).outputs[0].sha256);

    // Round metrics: evaluation in every round, judge counts and self-label accuracy in rounds >= 1, trainer metrics.
    const metrics = Object.fromEntries(run.rounds.map((m) => [m.round, m.metrics]));
    for (const t of [0, 1, 2]) {
      expect(metrics[t]['eval/win_rate']).toBeGreaterThanOrEqual(metrics[t]['eval/win_rate_ci_low']);
      expect(metrics[t]['eval/win_rate']).toBeLessThanOrEqual(metrics[t]['eval/win_rate_ci_high']);
      expect(metrics[t]['eval/comparisons']).toBe(5 * 2);
      expect(metrics[t]['eval/lc_win_rate']).toBeGreaterThanOrEqual(0);
      expect(metrics[t]['eval/lc_win_rate']).toBeLessThanOrEqual(1);
      expect(metrics[t]['eval/mean_length']).toBeGreaterThan(0);
      expect(metrics[t]['eval/gold_reward']).toBeGreaterThan(0);
      expect(metrics[t]['train/rewards/margins']).toBe(0.1);
    }
    expect(metrics[1]['judge/num_pairs']).toBe(6);
    expect(metrics[1]['judge/dropped_ties']).toBe(0);
    expect(metrics[1]['judge/self_label_accuracy']).toBeGreaterThanOrEqual(0);
    expect(h.events.filter((e) => e.kind === 'metrics').length).toBeGreaterThan(0);
    expect(h.events.at(-1)).toMatchObject({ kind: 'ended', run: { state: JobState.JOB_STATE_SUCCEEDED } });

    // Artifacts live under $DATA_DIR/runs/<run>/round-<t>/<stage>/.
    const responses = round(1, Stage.STAGE_GENERATE).outputs[0];
    expect(toLocalPath(responses.uri)).toBe(path.join(h.dataDir, 'runs', 'run-1', 'round-1', 'generate', 'responses.jsonl'));
  });

  it('leaves round prompts that repeat a seed or earlier prompt out of GENERATE (DEDUPLICATE, the default), counting them', async () => {
    const h = harness();
    const split = { $case: 'promptSplit' as const, value: { prompts: { uri: h.ws.promptPool, sha256: '', sizeBytes: 0 }, roundFractions: [0.3, 0.3], seedFraction: undefined } };
    const run = await runToEnd(h, { prompts: split });
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    // The pool's first 10 prompts are the seed pairs' prompts: round 1 (its first 30) generates only the 20 others.
    const metrics = Object.fromEntries(run.rounds.map((m) => [m.round, m.metrics]));
    expect([metrics[1]['generate/dropped_repeated_prompts'], metrics[1]['generate/num_prompts']]).toEqual([10, 20]);
    expect([metrics[2]['generate/dropped_repeated_prompts'], metrics[2]['generate/num_prompts']]).toEqual([0, 30]);
    const promptsOf = (t: number) => fs.readFileSync(path.join(h.dataDir, 'runs', 'run-1', `round-${t}`, 'generate', 'prompts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).prompt);
    expect(promptsOf(1).some((p: string) => p.startsWith('seed prompt'))).toBe(false);
    // ALLOW generates them all.
    const allowed = await runToEnd(h, { prompts: split, roundPromptOverlap: RoundPromptOverlap.ROUND_PROMPT_OVERLAP_ALLOW }, 'run-2');
    expect(allowed.rounds.find((m) => m.round === 1)!.metrics['generate/num_prompts']).toBe(30);
  });

  it('dpo-seed trains and evaluates round 0 only', async () => {
    const h = harness();
    const run = await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED, rounds: 3, prompts: undefined });
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(stageRuns(h.events)).toEqual(['0 STAGE_LEARN', '0 STAGE_EVALUATE']);
  });

  it('dpo-gold (DPO on the gold pairs of the whole budget) trains its seed pairs with DPO in round 0 only, under its own name', async () => {
    const h = harness();
    const run = await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_GOLD, rounds: 3, prompts: undefined });
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(stageRuns(h.events)).toEqual(['0 STAGE_LEARN', '0 STAGE_EVALUATE']);
    const learn = h.fakes.learn.calls[0].spec.kind;
    expect(learn?.$case === 'preference' && [learn.value.loss, learn.value.pairs?.uri]).toEqual([PreferenceLoss.PREFERENCE_LOSS_DPO, `file://${h.ws.seedPairs}`]);
    expect(run.spec?.configuration).toBe(Configuration.CONFIGURATION_DPO_GOLD);
    expect(configurationPlan(Configuration.CONFIGURATION_DPO_GOLD).name).toBe('dpo-gold');
    expect(configurationByName('dpo-gold')).toBe(Configuration.CONFIGURATION_DPO_GOLD);
    expect(configurationByName('dpo-silver')).toBeUndefined();
  });

  it('derives every seed from (run seed, round, stage), so the same spec gives the same artifacts', async () => {
    const h = harness();
    await runToEnd(h, {}, 'first');
    await runToEnd(h, {}, 'second');
    expect(artifactShas(h, 'second')).toEqual(artifactShas(h, 'first'));
    const generateSeeds = h.fakes.generate.calls.map((c) => c.params?.seed);
    expect(generateSeeds).toContain(deriveSeed(7, 1, 'GENERATE'));
    expect(generateSeeds).toContain(deriveSeed(7, 2, 'EVALUATE'));
    expect(generateSeeds).toContain(deriveSeed(7, 0, 'eval-baseline'));
    expect(h.fakes.learn.calls.map((c) => c.spec.hparams?.seed)).toContain(deriveSeed(7, 1, 'LEARN'));

    await runToEnd(h, { seed: 8 }, 'other-seed');
    expect(artifactShas(h, 'other-seed')['round-1 generate responses']).not.toBe(artifactShas(h, 'first')['round-1 generate responses']);
  });

  it('flips exactly round(rate · N) seed labels into its own artifact before seed DPO, the same pairs every time', async () => {
    const h = harness();
    const run = await runToEnd(h, { labelNoiseRate: 0.3, configuration: Configuration.CONFIGURATION_DPO_SEED });
    expect(run.rounds[0].metrics['data/flipped_pairs']).toBe(6);
    const pairs = h.fakes.learn.calls[0].spec.kind?.$case === 'preference' ? h.fakes.learn.calls[0].spec.kind.value.pairs! : undefined;
    const noisy = fs.readFileSync(toLocalPath(pairs!.uri), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const original = fs.readFileSync(h.ws.seedPairs, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const flipped = noisy.filter((p, i) => p.chosen === original[i].rejected && p.rejected === original[i].chosen);
    expect(flipped).toHaveLength(6);
    expect(noisy.filter((p, i) => p.chosen === original[i].chosen)).toHaveLength(14);
    await runToEnd(h, { labelNoiseRate: 0.3, configuration: Configuration.CONFIGURATION_DPO_SEED }, 'again');
    expect(artifactShas(h, 'again')['round-0 learn seed_pairs']).toBe(artifactShas(h, 'run-1')['round-0 learn seed_pairs']);
  });

  it('merges shards by prompt index: the same artifacts whatever order shards finish in, and as unsharded', async () => {
    const h = harness();
    const sharding = { generatorShards: 3, judgeShards: 2 };
    // Shard k takes (count - k) * 15 ms: the last shard finishes first.
    h.fakes.generate.before = (r) => new Promise((resolve) => setTimeout(resolve, ((r.shard?.count ?? 1) - (r.shard?.index ?? 0)) * 15));
    h.fakes.judge.before = (r) => new Promise((resolve) => setTimeout(resolve, ((r.shard?.count ?? 1) - (r.shard?.index ?? 0)) * 15));
    await runToEnd(h, { sharding }, 'last-first');
    h.fakes.generate.before = (r) => new Promise((resolve) => setTimeout(resolve, (r.shard?.index ?? 0) * 15));
    h.fakes.judge.before = (r) => new Promise((resolve) => setTimeout(resolve, (r.shard?.index ?? 0) * 15));
    await runToEnd(h, { sharding }, 'first-first');
    h.fakes.generate.before = undefined;
    h.fakes.judge.before = undefined;
    await runToEnd(h, {}, 'unsharded');

    const shardedCalls = h.fakes.generate.calls.filter((c) => c.shard);
    expect(new Set(shardedCalls.map((c) => `${c.shard!.index}/${c.shard!.count}`))).toEqual(new Set(['0/3', '1/3', '2/3']));
    expect(artifactShas(h, 'first-first')).toEqual(artifactShas(h, 'last-first'));
    expect(artifactShas(h, 'unsharded')).toEqual(artifactShas(h, 'last-first'));
    const responses = fs.readFileSync(path.join(h.dataDir, 'runs', 'last-first', 'round-1', 'generate', 'responses.jsonl'), 'utf8');
    expect(responses.trim().split('\n').map((l) => JSON.parse(l).prompt_index)).toEqual([0, 1, 2, 3, 4, 5]);
    // Three whole runs on the fakes: about 3 s alone, past jest's default 5 s on a loaded machine.
  }, 30_000);

  it('fails with the stage and the service named when a service stays down, and resumes by StartRun with the same run_id', async () => {
    const h = harness();
    h.fakes.generate.before = (r) => {
      if (r.params?.seed === deriveSeed(7, 2, 'GENERATE')) throw new ServiceUnavailableError('generator', 'localhost:50052', 6, 'connect ECONNREFUSED');
    };
    const failed = await runToEnd(h);
    expect(failed.state).toBe(JobState.JOB_STATE_FAILED);
    expect(failed.error).toBe('round 2 GENERATE: generator at localhost:50052 unavailable after 6 attempts: connect ECONNREFUSED');
    expect(failed.stages.find((s) => s.round === 2 && s.stage === Stage.STAGE_GENERATE)?.state).toBe(JobState.JOB_STATE_FAILED);

    h.fakes.generate.before = undefined;
    const callsBefore = { generate: h.fakes.generate.calls.length, learn: h.fakes.learn.calls.length };
    h.events.length = 0;
    const resumed = await runToEnd(h);
    expect(resumed.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(resumed.error).toBe('');
    // Only round 2 ran again (the verified stages were skipped): GENERATE plus EVALUATE's samples; LEARN once.
    expect(stageRuns(h.events)).toEqual(['2 STAGE_GENERATE', '2 STAGE_JUDGE', '2 STAGE_LEARN', '2 STAGE_EVALUATE']);
    expect(h.fakes.generate.calls.length - callsBefore.generate).toBe(2);
    expect(h.fakes.learn.calls.length - callsBefore.learn).toBe(1);
  });

  it('a failed trainer job fails the run; the resumed stage starts a new job (attempt 2) instead of re-attaching', async () => {
    const h = harness();
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 2) throw new StageFailedError('trainer job x failed: loss is NaN');
    };
    const failed = await runToEnd(h);
    expect(failed.error).toBe('round 1 LEARN: trainer job x failed: loss is NaN');
    h.fakes.learn.before = undefined;
    await runToEnd(h);
    const ids = h.fakes.learn.calls.map((c) => c.jobId.replace(/^run-1-[0-9a-f]{8}-/, ''));
    expect(ids).toEqual(['r0-learn-a1', 'r1-learn-a1', 'r1-learn-a2', 'r2-learn-a1']);
  });

  it('a trainer job INTERRUPTED by its own restart leaves the run INTERRUPTED, and resumable', async () => {
    const h = harness();
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 1) throw new StageFailedError('trainer job x was interrupted: no checkpoint', true);
    };
    const interrupted = await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    expect(interrupted.state).toBe(JobState.JOB_STATE_INTERRUPTED);
    h.fakes.learn.before = undefined;
    expect((await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED })).state).toBe(JobState.JOB_STATE_SUCCEEDED);
  });

  it('cancel aborts the stage in flight (cancelling its trainer job) and the run ends CANCELLED; StartRun resumes it', async () => {
    const h = harness();
    const gate = new Gate();
    const reached = new Gate();
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 2) {
        reached.open();
        return gate.promise;
      }
    };
    await startAndWatch(h, {}, 'run-1');
    await reached.promise;
    const cancelled = await h.engine.cancelRun('run-1');
    expect(cancelled.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(cancelled.stages.find((s) => s.round === 1 && s.stage === Stage.STAGE_LEARN)?.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(h.fakes.learn.cancelled).toEqual([h.fakes.learn.calls[1].jobId]);
    expect(h.events.at(-1)).toMatchObject({ kind: 'ended', run: { state: JobState.JOB_STATE_CANCELLED } });
    expect((await h.engine.cancelRun('run-1')).state).toBe(JobState.JOB_STATE_CANCELLED);

    h.fakes.learn.before = undefined;
    const resumed = await runToEnd(h);
    expect(resumed.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    await expect(h.engine.cancelRun('run-1')).rejects.toThrow(/already succeeded/);
  });

  it('StartRun with the same run_id and spec returns the run; with another spec it is a conflict', async () => {
    const h = harness();
    const run = await runToEnd(h);
    const again = await h.engine.startRun({ runId: 'run-1', spec: validSpec(h.ws) });
    expect(again.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(again.traceId).toBe(run.traceId);
    await expect(h.engine.startRun({ runId: 'run-1', spec: validSpec(h.ws, { seed: 99 }) })).rejects.toThrow(/different spec/);
  });
});

describe('resume', () => {
  it('after a stop mid-stage: skips the verified stages, re-executes the one in flight under the same trainer job id', async () => {
    const h = harness();
    const reached = new Gate();
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 2) {
        reached.open();
        return new Promise(() => undefined); // never finishes: the coordinator stops under it
      }
    };
    await startAndWatch(h, {}, 'run-1');
    await reached.promise;
    await h.engine.stop();
    const stopped = h.engine.getRun('run-1');
    expect(stopped.state).toBe(JobState.JOB_STATE_RUNNING);
    expect(stopped.stages.find((s) => s.round === 1 && s.stage === Stage.STAGE_LEARN)?.state).toBe(JobState.JOB_STATE_RUNNING);

    const next = h.restart();
    expect(next.engine.resumeAll()).toEqual(['run-1']);
    const unsubscribe = next.engine.watch('run-1', (e) => next.events.push(e)).unsubscribe;
    await next.engine.settled('run-1');
    unsubscribe();
    expect(next.engine.getRun('run-1').state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(stageRuns(next.events)).toEqual(['1 STAGE_LEARN', '1 STAGE_EVALUATE', '2 STAGE_GENERATE', '2 STAGE_JUDGE', '2 STAGE_LEARN', '2 STAGE_EVALUATE']);
    expect(next.fakes.learn.calls[0].jobId).toBe(h.fakes.learn.calls[1].jobId);
    expect(next.fakes.generate.calls.map((c) => c.params?.seed)).not.toContain(deriveSeed(7, 1, 'GENERATE'));

    // The same artifacts as a run that was never stopped.
    await runToEnd(next, {}, 'reference');
    expect(artifactShas(next, 'run-1')).toEqual(artifactShas(next, 'reference'));
  });

  it('re-executes a stage whose output has a wrong checksum or is missing, and only what depends on a changed output', async () => {
    const h = harness();
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 3) throw new StageFailedError('trainer job x failed');
    };
    expect((await runToEnd(h)).state).toBe(JobState.JOB_STATE_FAILED); // at round 2 LEARN
    const reference = artifactShas(h, 'run-1');
    const stage = (round: number, name: string) => path.join(h.dataDir, 'runs', 'run-1', `round-${round}`, name);
    fs.appendFileSync(path.join(stage(1, 'generate'), 'responses.jsonl'), ' '); // wrong checksum
    fs.rmSync(path.join(stage(0, 'evaluate'), 'samples.jsonl')); // missing
    h.fakes.learn.before = undefined;
    h.events.length = 0;
    const calls = { generate: h.fakes.generate.calls.length, judge: h.fakes.judge.calls.length, learn: h.fakes.learn.calls.length };

    const resumed = await runToEnd(h);
    expect(resumed.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    // Re-executed: round 0 EVALUATE (missing output) and round 1 GENERATE (altered output), whose new outputs are
    // byte-identical, so nothing downstream of them runs again; round 2 LEARN (failed) and round 2 EVALUATE.
    expect(stageRuns(h.events)).toEqual(['0 STAGE_EVALUATE', '1 STAGE_GENERATE', '2 STAGE_LEARN', '2 STAGE_EVALUATE']);
    expect(h.fakes.generate.calls.length - calls.generate).toBe(4); // baseline + samples, round 1, round 2 samples
    expect(h.fakes.judge.calls.length - calls.judge).toBe(3); // round 0 judgements, round 2 judgements + self-labels
    expect(h.fakes.learn.calls.length - calls.learn).toBe(1);
    const after = artifactShas(h, 'run-1');
    for (const [name, sha] of Object.entries(reference)) expect([name, after[name]]).toEqual([name, sha]);
  });

  it('trusts a verified stage.json even when the coordinator died before the database recorded the stage', async () => {
    const h = harness();
    await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    // What the database looks like if the process died between writing stage.json and committing the stage.
    h.store.startStage('run-1', 0, Stage.STAGE_EVALUATE);
    h.store.setRunState('run-1', JobState.JOB_STATE_RUNNING);
    const calls = h.fakes.generate.calls.length + h.fakes.judge.calls.length;
    expect(h.engine.resumeAll()).toEqual(['run-1']);
    await h.engine.settled('run-1');
    const run = h.engine.getRun('run-1');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(run.stages.every((s) => s.state === JobState.JOB_STATE_SUCCEEDED)).toBe(true);
    expect(run.rounds[0].metrics['eval/win_rate']).toBeDefined();
    expect(h.fakes.generate.calls.length + h.fakes.judge.calls.length).toBe(calls);
  });

  it('refuses to go on when an input file changed after the run started', async () => {
    const h = harness();
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 1) throw new StageFailedError('trainer job x failed');
    };
    await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    fs.appendFileSync(h.ws.seedPairs, JSON.stringify({ prompt: 'new', chosen: 'a', rejected: 'b' }) + '\n');
    h.fakes.learn.before = undefined;
    const run = await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    expect(run.state).toBe(JobState.JOB_STATE_FAILED);
    expect(run.error).toMatch(/round 0 LEARN: the seed pairs .* changed since the run started/);
  });
});

describe('watch', () => {
  it('gives a late watcher the current state: metrics so far and the stage in flight', async () => {
    const h = harness();
    const gate = new Gate();
    const reached = new Gate();
    h.fakes.judge.before = (r) => {
      if (r.method !== 4 /* RULE: evaluation */) {
        reached.open();
        return gate.promise;
      }
    };
    await h.engine.startRun({ runId: 'run-1', spec: validSpec(h.ws) });
    await reached.promise;
    const late: RunEvent[] = [];
    const { initial, unsubscribe } = h.engine.watch('run-1', (e) => late.push(e));
    // Round 0's evaluation and round 1's generation counts so far.
    expect(initial.filter((e) => e.kind === 'metrics').map((e) => (e as Extract<RunEvent, { kind: 'metrics' }>).metrics.round)).toEqual([0, 1]);
    expect(initial.at(-1)).toMatchObject({ kind: 'stage', round: 1, stage: Stage.STAGE_JUDGE, state: JobState.JOB_STATE_RUNNING });
    h.fakes.judge.before = undefined;
    gate.open();
    await h.engine.settled('run-1');
    unsubscribe();
    expect(late.at(-1)).toMatchObject({ kind: 'ended', run: { state: JobState.JOB_STATE_SUCCEEDED } });
    const ended = h.engine.watch('run-1', () => undefined);
    expect(ended.initial).toEqual([{ kind: 'ended', run: h.engine.getRun('run-1') }]);
    ended.unsubscribe();
  });
});

describe('spec storage', () => {
  it('keeps the pinned spec and returns it from GetRun', async () => {
    const h = harness();
    const run = await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    expect(run.spec?.seedPairs?.sha256).toHaveLength(64);
    expect(RunSpec.toJSON(run.spec!)).toMatchObject({ configuration: 'CONFIGURATION_DPO_SEED' });
  });
});
