// A run with RunSpec.engine over the in-memory executors and a loopback server answering vLLM's runtime LoRA routes:
// which models each stage sends, what the engine is asked to load and unload (the run's end unloading what is left,
// whichever way it ends), a run whose engine is down, and one whose engine refuses the last unload.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineWeights, JobState, Stage, type Run } from '@alignment/contracts';
import { StageFailedError } from './executors';
import { EngineClient } from '../clients/engine-client';
import { closeHarnesses, harness, roundGenerateCalls, runToEnd, type Harness } from '../../testing/engine-harness';
import { FakeVllm } from '../../testing/fake-vllm';

afterAll(closeHarnesses);

let vllm: FakeVllm;
beforeEach(async () => {
  vllm = new FakeVllm();
  await vllm.start();
});
afterEach(() => vllm.close());

const engineSpec = (baseUrl: string) => ({ engine: { baseUrl, referenceModel: 'pi-init', weights: EngineWeights.ENGINE_WEIGHTS_ONNX_EXPORT } });
const engineHarness = () => harness(undefined, undefined, { executors: { engine: (url) => new EngineClient(url) } });
/** The messages of the stage events a watcher got that say the run's policies may still be loaded. */
const leftWarnings = (h: Harness) => h.events.flatMap((e) => (e.kind === 'stage' && e.message.includes('may still be loaded') ? [e.message] : []));
const endedAt = (h: Harness) => h.events.findIndex((e) => e.kind === 'ended');

describe('a run with spec.engine', () => {
  it("samples and judges each round's policy on the engine, loaded by name before use, the earlier ones unloaded, the last at the end", async () => {
    const h = engineHarness();
    const run = await runToEnd(h, engineSpec(vllm.baseUrl));
    expect({ state: run.state, error: run.error }).toEqual({ state: JobState.JOB_STATE_SUCCEEDED, error: '' });

    // GENERATE of round t samples π_{t-1} on the engine; its tokenizer is still the round's export.
    const rounds = h.fakes.generate.calls.filter((c) => c.prompts?.$case === 'promptSet' && c.model?.openai?.model.includes('-round-'));
    expect(new Set(rounds.map((c) => c.model!.openai!.model))).toEqual(new Set(['run-1-round-0', 'run-1-round-1', 'run-1-round-2']));
    expect(h.fakes.generate.calls.every((c) => c.model?.openai?.baseUrl === vllm.baseUrl && c.model.onnx?.uri)).toBe(true);
    // π_init (EVALUATE's baseline, the SPA judge's reference) is the engine's reference model.
    expect(h.fakes.generate.calls.some((c) => c.model?.openai?.model === 'pi-init')).toBe(true);
    const spa = h.fakes.judge.calls.filter((c) => c.spaImplicit);
    expect(spa.map((c) => [c.spaImplicit!.policy!.openai!.model, c.spaImplicit!.reference!.openai!.model])).toEqual([
      ['run-1-round-0', 'pi-init'],
      ['run-1-round-1', 'pi-init'],
    ]);

    // Loaded once each, in round order, from the LEARN stage's ONNX export; unloaded when no later stage needs them,
    // the last one when the run ended: the engine serves π_init alone again.
    const posts = vllm.received.filter((r) => r.method === 'POST').map((r) => [r.url.replace('/v1/', ''), (r.body as { lora_name: string }).lora_name]);
    expect(posts).toEqual([
      ['load_lora_adapter', 'run-1-round-0'],
      ['load_lora_adapter', 'run-1-round-1'],
      ['unload_lora_adapter', 'run-1-round-0'],
      ['load_lora_adapter', 'run-1-round-2'],
      ['unload_lora_adapter', 'run-1-round-1'],
      ['unload_lora_adapter', 'run-1-round-2'],
    ]);
    const learned = run.stages.find((s) => s.round === 1 && s.stage === Stage.STAGE_LEARN)!.outputs;
    const onnx = learned.find((o) => o.uri.endsWith('/onnx'))!;
    const load1 = vllm.received.find((r) => (r.body as { lora_name?: string })?.lora_name === 'run-1-round-1')!.body as { lora_path: string };
    expect(load1.lora_path).toBe(fileURLToPath(onnx.uri));
    expect(path.basename(load1.lora_path)).toBe('onnx');
    expect([...vllm.served]).toEqual(['pi-init']);
    expect(leftWarnings(h)).toEqual([]);
  });

  it('with sample_from_init, every round samples π_init as the engine serves it, and only the judges are loaded', async () => {
    const h = engineHarness();
    const run = await runToEnd(h, { ...engineSpec(vllm.baseUrl), sampleFromInit: true });
    expect({ state: run.state, error: run.error }).toEqual({ state: JobState.JOB_STATE_SUCCEEDED, error: '' });
    const rounds = roundGenerateCalls(h, 'run-1');
    expect(rounds.map((c) => c.model?.openai?.model)).toEqual(['pi-init', 'pi-init']);
    const spa = h.fakes.judge.calls.filter((c) => c.spaImplicit);
    expect(spa.map((c) => c.spaImplicit!.policy!.openai!.model)).toEqual(['run-1-round-0', 'run-1-round-1']);
    expect([...vllm.served]).toEqual(['pi-init']);
  });

  it('fails at the first stage that needs the engine, naming its URL, when the engine does not answer', async () => {
    const url = vllm.baseUrl;
    await vllm.close();
    vllm = new FakeVllm();
    await vllm.start();
    const h = engineHarness();
    const run = await runToEnd(h, engineSpec(url));
    expect(run.state).toBe(JobState.JOB_STATE_FAILED);
    expect(run.error).toMatch(new RegExp(`^round 0 EVALUATE: inference engine at ${url.replace(/[.]/g, '\\.')}: GET /models: no answer`));
    expect(run.stages.find((s) => s.round === 0 && s.stage === Stage.STAGE_EVALUATE)?.state).toBe(JobState.JOB_STATE_FAILED);
    // Its end could not reach the engine either: watchers are told, and the run's error is still the stage's.
    expect(leftWarnings(h)).toEqual([expect.stringMatching(/^the run's policies \(run-1-round-\*\) may still be loaded: unloading them failed: inference engine at .*: GET \/models: no answer/)]);
  });

  it('a SUCCEEDED run stays SUCCEEDED when the engine refuses its last unload; watchers are told, and DeleteRun unloads it', async () => {
    const h = engineHarness();
    vllm.failUnload = { name: 'run-1-round-2', status: 500, body: JSON.stringify({ object: 'error', message: 'engine busy', code: 500 }) };
    const run = await runToEnd(h, engineSpec(vllm.baseUrl));
    expect({ state: run.state, error: run.error }).toEqual({ state: JobState.JOB_STATE_SUCCEEDED, error: '' });
    expect(leftWarnings(h)).toEqual([
      `the run's policies (run-1-round-*) may still be loaded: unloading them failed: inference engine at ${vllm.baseUrl}: POST /unload_lora_adapter (lora_name 'run-1-round-2'): 500 engine busy (DeleteRun tries again)`,
    ]);
    // Told before the end, as an event of the run's last stage.
    const warning = h.events.findIndex((e) => e.kind === 'stage' && e.message.includes('may still be loaded'));
    expect(warning).toBeLessThan(endedAt(h));
    expect(h.events[warning]).toMatchObject({ round: 2, stage: Stage.STAGE_EVALUATE, state: JobState.JOB_STATE_SUCCEEDED });
    expect([...vllm.served].sort()).toEqual(['pi-init', 'run-1-round-2']);

    vllm.failUnload = undefined;
    await h.engine.deleteRun('run-1');
    expect([...vllm.served]).toEqual(['pi-init']);
  });

  const endedBy = async (h: Harness, act: (h: Harness) => void): Promise<Run> => {
    // Round 2's JUDGE scores with π_1, loaded by round 2's GENERATE: the run ends there with a policy loaded.
    h.fakes.judge.before = (request) => {
      if (request.spaImplicit?.policy?.openai?.model === 'run-1-round-1') act(h);
    };
    return runToEnd(h, engineSpec(vllm.baseUrl));
  };

  it('a run that FAILS or is CANCELLED unloads the policies it had loaded too', async () => {
    const failed = await endedBy(engineHarness(), () => {
      throw new StageFailedError('judge exploded');
    });
    expect({ state: failed.state, error: failed.error }).toEqual({ state: JobState.JOB_STATE_FAILED, error: 'round 2 JUDGE: judge exploded' });
    expect(vllm.received.some((r) => (r.body as { lora_name?: string })?.lora_name === 'run-1-round-1' && r.url === '/v1/unload_lora_adapter')).toBe(true);
    expect([...vllm.served]).toEqual(['pi-init']);

    vllm.received.length = 0;
    const cancelled = await endedBy(engineHarness(), (h) => void h.engine.cancelRun('run-1'));
    expect(cancelled.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(vllm.received.filter((r) => r.url === '/v1/load_lora_adapter').length).toBeGreaterThan(0);
    expect([...vllm.served]).toEqual(['pi-init']);
  });
});
