import { EngineWeights, type RunSpec } from '@alignment/contracts';
import { check } from './fields';

/**
 * RunSpec.engine (coordinator.proto InferenceEngine): an http(s) base URL, the name π_init is served under, and the
 * form of the policies the engine loads; the LoRA-adapter form needs every LEARN stage to train with LoRA (only a
 * LoRA job writes the adapter the engine loads).
 */
export function checkEngine(spec: RunSpec, rounds: number): void {
  const engine = spec.engine;
  if (!engine) return;
  let url: URL | undefined;
  try {
    url = new URL(engine.baseUrl);
  } catch {
    url = undefined;
  }
  check(
    url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:'),
    'engine.base_url',
    `must be an http(s) URL such as http://vllm:8000/v1, got '${engine.baseUrl}'`,
  );
  check(engine.referenceModel.trim() !== '', 'engine.reference_model', 'is required (the name the engine serves π_init under)');
  check(
    engine.weights === EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER || engine.weights === EngineWeights.ENGINE_WEIGHTS_ONNX_EXPORT,
    'engine.weights',
    `must be ENGINE_WEIGHTS_LORA_ADAPTER (vLLM) or ENGINE_WEIGHTS_ONNX_EXPORT (the generator's /v1 endpoint), got ${EngineWeights[engine.weights] ?? engine.weights}`,
  );
  if (engine.weights === EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER) {
    const why = 'is required by engine.weights ENGINE_WEIGHTS_LORA_ADAPTER: only a LoRA job writes the adapter the engine loads';
    check(spec.seedTraining?.lora !== undefined, 'seed_training.lora', why);
    if (rounds > 0) check(spec.roundTraining?.lora !== undefined, 'round_training.lora', why);
  }
}
