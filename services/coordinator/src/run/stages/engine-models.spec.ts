// What the coordinator asks an inference engine to load for a round's policy (RunSpec.engine): a local export or
// adapter, or, with the models in object storage (MODEL_STORE_URI), their s3:// prefix when the engine reads those.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileUri } from '@alignment/artifacts';
import { EngineWeights, type InferenceEngine, type ModelRef } from '@alignment/contracts';
import { StageFailedError } from '../executors';
import { weightsPath } from './engine-models';

const engine = (weights: EngineWeights, readsObjectStore?: boolean): InferenceEngine => ({ baseUrl: 'http://vllm:8000/v1', referenceModel: 'pi-init', weights, readsObjectStore });
const ONNX = EngineWeights.ENGINE_WEIGHTS_ONNX_EXPORT;
const LORA = EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER;
const stored: ModelRef = {
  hfCheckpoint: { uri: 's3://models/team/run-1/round-1/learn/attempt-1/checkpoint', sha256: 'a'.repeat(64), sizeBytes: 1 },
  onnx: { uri: 's3://models/team/run-1/round-1/learn/attempt-1/onnx/', sha256: 'b'.repeat(64), sizeBytes: 1 },
};

describe('weightsPath', () => {
  it('names a model in object storage by its s3:// prefix when the engine reads the store', () => {
    expect(weightsPath(engine(ONNX, true), stored, 1)).toBe('s3://models/team/run-1/round-1/learn/attempt-1/onnx');
    expect(weightsPath(engine(LORA, true), stored, 1)).toBe('s3://models/team/run-1/round-1/learn/attempt-1/checkpoint/adapter');
  });

  it('fails the stage for a model in object storage when the engine does not read it, saying what to set', () => {
    for (const readsObjectStore of [undefined, false]) {
      const load = () => weightsPath(engine(ONNX, readsObjectStore), stored, 2);
      expect(load).toThrow(StageFailedError);
      expect(load).toThrow("round 2's model is in object storage (s3://models/team/run-1/round-1/learn/attempt-1/onnx/, this coordinator's MODEL_STORE_URI); set engine.reads_object_store");
    }
  });

  it('names a local model by its path, and refuses a checkpoint without the LoRA adapter', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-models-'));
    try {
      const local: ModelRef = { hfCheckpoint: { uri: fileUri(dir), sha256: '', sizeBytes: 0 }, onnx: { uri: fileUri(path.join(dir, 'onnx')), sha256: '', sizeBytes: 0 } };
      expect(weightsPath(engine(ONNX, true), local, 1)).toBe(path.join(dir, 'onnx'));
      expect(() => weightsPath(engine(LORA), local, 1)).toThrow(`round 1's checkpoint has no LoRA adapter at ${path.join(dir, 'adapter')}`);
      fs.mkdirSync(path.join(dir, 'adapter'));
      fs.writeFileSync(path.join(dir, 'adapter', 'adapter_config.json'), '{}');
      expect(weightsPath(engine(LORA), local, 1)).toBe(path.join(dir, 'adapter'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
