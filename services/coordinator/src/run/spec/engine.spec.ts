// RunSpec.engine validation: a bad field is INVALID_ARGUMENT naming it; the LoRA-adapter form needs LoRA training.
import { EngineWeights, type RunSpec } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { makeWorkspace, validSpec, type Workspace } from '../../../testing/run-fixtures';
import { validateSpec } from '../run-spec';

let ws: Workspace;
beforeAll(() => (ws = makeWorkspace()));
afterAll(() => ws.cleanup());

const engine = { baseUrl: 'http://vllm.alignment.svc:8000/v1', referenceModel: 'pi-init', weights: EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER };
const lora = { rank: 16, alpha: 32, dropout: 0, targetModules: [] };

async function outcome(mutate: (spec: RunSpec) => void): Promise<string> {
  const spec = validSpec(ws);
  mutate(spec);
  return validateSpec(spec).then(
    () => 'valid',
    (error: unknown) => {
      if (error instanceof InvalidArgumentError) return `${error.field}: ${error.reason}`;
      throw error;
    },
  );
}

describe('spec.engine', () => {
  it('is valid with an http(s) base URL, a reference model and a form; the LoRA form with LoRA in both trainings', async () => {
    expect(await outcome((s) => (s.engine = { ...engine, weights: EngineWeights.ENGINE_WEIGHTS_ONNX_EXPORT }))).toBe('valid');
    expect(
      await outcome((s) => {
        s.engine = engine;
        s.seedTraining!.lora = lora;
        s.roundTraining!.lora = lora;
      }),
    ).toBe('valid');
  });

  it('names the bad field', async () => {
    expect(await outcome((s) => (s.engine = { ...engine, baseUrl: 'vllm:8000' }))).toMatch(/^spec\.engine\.base_url: must be an http\(s\) URL/);
    expect(await outcome((s) => (s.engine = { ...engine, baseUrl: 'grpc://vllm:8000/v1' }))).toMatch(/^spec\.engine\.base_url: /);
    expect(await outcome((s) => (s.engine = { ...engine, referenceModel: ' ' }))).toMatch(/^spec\.engine\.reference_model: is required/);
    expect(await outcome((s) => (s.engine = { ...engine, weights: EngineWeights.ENGINE_WEIGHTS_UNSPECIFIED }))).toBe(
      "spec.engine.weights: must be ENGINE_WEIGHTS_LORA_ADAPTER (vLLM) or ENGINE_WEIGHTS_ONNX_EXPORT (the generator's /v1 endpoint), got ENGINE_WEIGHTS_UNSPECIFIED",
    );
  });

  it('refuses the LoRA-adapter form without LoRA training, naming the training that lacks it', async () => {
    const why = 'is required by engine.weights ENGINE_WEIGHTS_LORA_ADAPTER: only a LoRA job writes the adapter the engine loads';
    expect(await outcome((s) => (s.engine = engine))).toBe(`spec.seed_training.lora: ${why}`);
    expect(
      await outcome((s) => {
        s.engine = engine;
        s.seedTraining!.lora = lora;
      }),
    ).toBe(`spec.round_training.lora: ${why}`);
  });
});
