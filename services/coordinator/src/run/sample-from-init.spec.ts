// RunSpec.sample_from_init (docs/algorithm.md §7): rounds 1..T sample their responses from π_init instead of
// π_{t−1}, and the policy still trains from π_{t−1}; through the engine with in-process fake executors (StartRun's
// validation: self-annotation-levers.spec.ts; with an engine: engine-runs.spec.ts).
import { JobState } from '@alignment/contracts';
import { artifactShas, closeHarnesses, harness, preferenceOf, roundGenerateCalls, runToEnd } from '../../testing/engine-harness';

afterAll(closeHarnesses);

describe('sample_from_init', () => {
  it('every round samples from π_init and trains from π_{t−1}; by default round t samples from π_{t−1}', async () => {
    const h = harness();
    const run = await runToEnd(h, { sampleFromInit: true }, 'from-init');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const shas = artifactShas(h, 'from-init');
    const sampled = roundGenerateCalls(h, 'from-init').map((c) => c.model);
    expect(sampled.map((m) => m?.onnx?.uri)).toEqual([run.spec!.baseModel!.onnx!.uri, run.spec!.baseModel!.onnx!.uri]);
    const [, round1, round2] = h.fakes.learn.calls.map((c) => preferenceOf(c.spec));
    expect(round1.init?.sha256).toBe(shas['round-0 learn model.hf_checkpoint']);
    expect(round2.init?.sha256).toBe(shas['round-1 learn model.hf_checkpoint']);

    const calls = h.fakes.generate.calls.length;
    await runToEnd(h, {}, 'on-policy');
    const onPolicy = artifactShas(h, 'on-policy');
    const sampledOnPolicy = roundGenerateCalls(h, 'on-policy', calls).map((c) => c.model?.onnx?.sha256);
    expect(sampledOnPolicy).toEqual([onPolicy['round-0 learn model.onnx'], onPolicy['round-1 learn model.onnx']]);
    expect(sampledOnPolicy).not.toContain(undefined);
    // The samples differ, and so does what the rounds learn from them.
    expect(onPolicy['round-1 generate responses']).not.toBe(shas['round-1 generate responses']);
  });
});
