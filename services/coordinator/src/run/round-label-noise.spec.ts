// RunSpec.round_label_noise_rate (docs/algorithm.md §7): a known share of each round's labelled pairs is flipped
// after the judge (and its confidence filter), deterministically from the run seed and the round, the judge's scores
// left in place; through the engine with in-process fake executors.
import * as fs from 'node:fs';
import { toLocalPath } from '@alignment/artifacts';
import { JobState, Stage, type Run } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { closeHarnesses, harness, preferenceOf, runToEnd } from '../../testing/engine-harness';
import { makeWorkspace, validSpec } from '../../testing/run-fixtures';
import { flipRoundLabels } from './label-noise';
import { validateSpec } from './run-spec';

afterAll(closeHarnesses);

type Line = Record<string, unknown>;
const readLines = (uri: string): Line[] => fs.readFileSync(toLocalPath(uri), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const judgeOutput = (run: Run, round: number, name: string) =>
  run.stages.find((s) => s.round === round && s.stage === Stage.STAGE_JUDGE)!.outputs.find((o) => toLocalPath(o.uri).endsWith(name))!;

describe('round_label_noise_rate', () => {
  it('flips exactly round(rate · N) of the pairs LEARN trains on, after the confidence filter, scores left in place', async () => {
    const h = harness();
    const run = await runToEnd(h, { roundLabelNoiseRate: 0.25, confidenceKeepFraction: 0.8 }, 'noisy');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    for (const round of [1, 2]) {
      const judged = readLines(judgeOutput(run, round, 'judged_pairs.jsonl').uri);
      const trained = readLines(judgeOutput(run, round, '/pairs.jsonl').uri);
      expect(trained).toHaveLength(Math.ceil(0.8 * judged.length));
      const byPrompt = new Map(judged.map((p) => [p.prompt_index, p]));
      const flipped = trained.filter((p) => p.chosen === byPrompt.get(p.prompt_index)!.rejected);
      expect(flipped).toHaveLength(Math.round(0.25 * trained.length));
      expect(flipped.length).toBeGreaterThan(0);
      for (const pair of trained) {
        const original = byPrompt.get(pair.prompt_index)!;
        const swapped = flipped.includes(pair);
        expect([pair.chosen, pair.rejected]).toEqual(swapped ? [original.rejected, original.chosen] : [original.chosen, original.rejected]);
        expect([pair.chosen_score, pair.rejected_score, pair.margin]).toEqual([original.chosen_score, original.rejected_score, original.margin]);
      }
      const metrics = run.rounds.find((r) => r.round === round)!.metrics;
      expect(metrics['judge/flipped_labels']).toBe(flipped.length);
      expect(metrics['judge/filtered_low_confidence']).toBe(judged.length - trained.length);
      expect(preferenceOf(h.fakes.learn.calls[round].spec).pairs!.sha256).toBe(judgeOutput(run, round, '/pairs.jsonl').sha256);
    }

    // Deterministic in the run seed: the same spec flips the same pairs; another seed flips others.
    const again = await runToEnd(h, { roundLabelNoiseRate: 0.25, confidenceKeepFraction: 0.8 }, 'noisy-again');
    expect(judgeOutput(again, 1, '/pairs.jsonl').sha256).toBe(judgeOutput(run, 1, '/pairs.jsonl').sha256);
    const other = await runToEnd(h, { roundLabelNoiseRate: 0.25, confidenceKeepFraction: 0.8, seed: 99 }, 'noisy-other-seed');
    const flippedIn = (r: Run) => {
      const judged = new Map(readLines(judgeOutput(r, 1, 'judged_pairs.jsonl').uri).map((p) => [p.prompt_index, p]));
      return readLines(judgeOutput(r, 1, '/pairs.jsonl').uri).filter((p) => p.chosen !== judged.get(p.prompt_index)!.chosen).map((p) => p.prompt_index);
    };
    expect(flippedIn(other)).not.toEqual(flippedIn(run));
  });

  it('flipRoundLabels swaps the responses and their finish flags of a seeded, exact-count subset', () => {
    const pairs = Array.from({ length: 10 }, (_, i) => ({
      prompt_index: i, chosen: `good ${i}`, rejected: `bad ${i}`, chosen_finished: true, rejected_finished: false,
      chosen_score: 1, rejected_score: 0, margin: 1,
    }));
    const { pairs: noisy, flipped } = flipRoundLabels(pairs, 0.3, 7);
    expect(flipped).toHaveLength(3);
    expect(flipRoundLabels(pairs, 0.3, 7).flipped).toEqual(flipped);
    noisy.forEach((pair, i) => {
      const swapped = flipped.includes(i);
      expect(pair).toEqual(swapped
        ? { ...pairs[i], chosen: `bad ${i}`, rejected: `good ${i}`, chosen_finished: false, rejected_finished: true }
        : pairs[i]);
    });
    expect(flipRoundLabels(pairs, 0, 7).pairs).toEqual(pairs);
    expect(() => flipRoundLabels(pairs, 0.5, 7)).toThrow('round label noise rate must be in [0, 0.5), got 0.5');
  });

  it('a rate outside [0, 0.5) is INVALID_ARGUMENT naming the field', async () => {
    const ws = makeWorkspace();
    for (const rate of [0.5, -0.1]) {
      const error = await validateSpec(validSpec(ws, { roundLabelNoiseRate: rate })).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe('spec.round_label_noise_rate');
    }
    ws.cleanup();
  });
});
