// RunSpec.sample_from_init (docs/algorithm.md §7): rounds 1..T sample their responses from π_init instead of
// π_{t−1}, and the policy still trains from π_{t−1}; through the engine with in-process fake executors (StartRun's
// validation: self-annotation-levers.spec.ts; with an engine: engine-runs.spec.ts).
import { JobState, type GenerateRequest } from '@alignment/contracts';
import { artifactShas, closeHarnesses, harness, preferenceOf, runToEnd } from '../../testing/engine-harness';

afterAll(closeHarnesses);

/** The models GENERATE sampled (the generator's calls less EVALUATE's, which sample the evaluation prompts). */
function roundSamplers(h: ReturnType<typeof harness>, from: number, evaluationPrompts: string): GenerateRequest['model'][] {
  return h.fakes.generate.calls
    .slice(from)
    .filter((c) => c.prompts?.$case === 'promptSet' && c.prompts.value.uri !== evaluationPrompts)
    .map((c) => c.model);
}

describe('sample_from_init', () => {
  it('every round samples from π_init and trains from π_{t−1}; by default round t samples from π_{t−1}', async () => {
    const h = harness();
    const run = await runToEnd(h, { sampleFromInit: true }, 'from-init');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const shas = artifactShas(h, 'from-init');
    const evaluationPrompts = run.spec!.evaluation!.prompts!.uri;
    const sampled = roundSamplers(h, 0, evaluationPrompts);
    expect(sampled.map((m) => m?.onnx?.uri)).toEqual([run.spec!.baseModel!.onnx!.uri, run.spec!.baseModel!.onnx!.uri]);
    const [, round1, round2] = h.fakes.learn.calls.map((c) => preferenceOf(c.spec));
    expect(round1.init?.sha256).toBe(shas['round-0 learn model.hf_checkpoint']);
    expect(round2.init?.sha256).toBe(shas['round-1 learn model.hf_checkpoint']);

    const calls = h.fakes.generate.calls.length;
    await runToEnd(h, {}, 'on-policy');
    const onPolicy = artifactShas(h, 'on-policy');
    const sampledOnPolicy = roundSamplers(h, calls, evaluationPrompts).map((m) => m?.onnx?.sha256);
    expect(sampledOnPolicy).toEqual([onPolicy['round-0 learn model.onnx'], onPolicy['round-1 learn model.onnx']]);
    expect(sampledOnPolicy).not.toContain(undefined);
    // The samples differ, and so does what the rounds learn from them.
    expect(onPolicy['round-1 generate responses']).not.toBe(shas['round-1 generate responses']);
  });
});
