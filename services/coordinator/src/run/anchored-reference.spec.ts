// RunSpec.anchored_reference (docs/algorithm.md §7): rounds 1..T train from π_{t−1} against π_init instead of
// against π_{t−1}; through the engine with in-process fake executors
// (StartRun's validation: self-annotation-levers.spec.ts).
import { JobState } from '@alignment/contracts';
import { artifactShas, closeHarnesses, harness, preferenceOf, runToEnd } from '../../testing/engine-harness';

afterAll(closeHarnesses);

describe('anchored_reference', () => {
  it('rounds train from π_{t−1} against π_init; by default against π_{t−1}', async () => {
    const h = harness();
    const anchored = await runToEnd(h, { anchoredReference: true }, 'anchored');
    expect(anchored.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const shas = artifactShas(h, 'anchored');
    const [round0, round1, round2] = h.fakes.learn.calls.map((c) => preferenceOf(c.spec));
    const initCheckpoint = round0.init!;
    expect(round0.reference).toEqual(initCheckpoint);
    expect(round1.init?.sha256).toBe(shas['round-0 learn model.hf_checkpoint']);
    expect(round1.reference?.uri).toBe(initCheckpoint.uri);
    expect(round1.reference?.sha256).toBe(initCheckpoint.sha256);
    expect(round2.init?.sha256).toBe(shas['round-1 learn model.hf_checkpoint']);
    expect(round2.reference?.uri).toBe(initCheckpoint.uri);

    const calls = h.fakes.learn.calls.length;
    await runToEnd(h, {}, 'previous');
    const [, plain1, plain2] = h.fakes.learn.calls.slice(calls).map((c) => preferenceOf(c.spec));
    expect(plain1.reference).toEqual(plain1.init);
    expect(plain2.reference).toEqual(plain2.init);
    // Round 0 is the same job either way; what round 1 trains depends on the reference.
    expect(artifactShas(h, 'previous')['round-0 learn model.onnx']).toBe(shas['round-0 learn model.onnx']);
  });
});
