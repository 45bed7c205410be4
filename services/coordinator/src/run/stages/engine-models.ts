import { isS3Uri, toLocalPath } from '@alignment/artifacts';
import { EngineWeights, type InferenceEngine, type ModelRef, type RunSpec } from '@alignment/contracts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { policyModelName, policyRound } from '../engine-policies';
import { StageFailedError } from '../executors';
import type { StageContext } from './stage';

// RunSpec.engine (coordinator.proto InferenceEngine): the ModelRefs GENERATE, JUDGE and EVALUATE send when a run
// samples and scores through an OpenAI-compatible engine, and the loading that makes the engine serve each round's
// policy before a stage uses it. Loading happens where the policy is used, not right after LEARN, so a resumed run
// (or a restarted engine, which forgot what it had loaded) is served again without anything to replay. The run's end
// unloads what is left (engine-policies.ts).

/** π_init as the stages send it: served by the engine under engine.reference_model, or embedded without an engine. */
export function referenceModel(spec: RunSpec): ModelRef {
  const base = spec.baseModel!;
  return spec.engine ? { ...base, openai: { baseUrl: spec.engine.baseUrl, model: spec.engine.referenceModel } } : base;
}

/**
 * What the engine's lora_path names for `model` (engine.weights): the export, or the LoRA adapter in the checkpoint;
 * for a model in object storage (MODEL_STORE_URI) its s3:// prefix, when the engine reads those (reads_object_store).
 */
export function weightsPath(engine: InferenceEngine, model: ModelRef, round: number): string {
  const lora = engine.weights === EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER;
  const uri = lora ? model.hfCheckpoint?.uri : model.onnx?.uri;
  if (uri !== undefined && isS3Uri(uri)) {
    if (!engine.readsObjectStore) {
      throw new StageFailedError(
        `round ${round}'s model is in object storage (${uri}, this coordinator's MODEL_STORE_URI); set engine.reads_object_store if the engine reads s3:// lora_path itself (the generator's /v1 endpoint does), or run it without MODEL_STORE_URI`,
      );
    }
    const prefix = uri.replace(/\/+$/, '');
    return lora ? `${prefix}/adapter` : prefix;
  }
  let dir: string;
  try {
    dir = toLocalPath(uri ?? '');
  } catch (error) {
    throw new StageFailedError(`round ${round}'s model at '${uri}' is not a path the engine can read: ${(error as Error).message}`);
  }
  if (!lora) return dir;
  const adapter = path.join(dir, 'adapter');
  if (!fs.existsSync(path.join(adapter, 'adapter_config.json'))) {
    throw new StageFailedError(`round ${round}'s checkpoint has no LoRA adapter at ${adapter} (engine.weights ENGINE_WEIGHTS_LORA_ADAPTER needs LoRA training)`);
  }
  return adapter;
}

/**
 * π_round as the stages send it. With an engine, it is loaded under policyModelName when the engine does not list
 * it, and this run's policies of earlier rounds that no later stage uses are unloaded (round 0's stays with
 * spec.frozen_judge: every round's judge uses it); without one, `model` as it is.
 */
export async function servedPolicy(ctx: StageContext, round: number, model: ModelRef): Promise<ModelRef> {
  const engine = ctx.spec.engine;
  if (!engine) return model;
  if (!ctx.executors.engine) throw new StageFailedError(`this coordinator has no client for an inference engine (spec.engine.base_url ${engine.baseUrl})`);
  const loader = ctx.executors.engine(engine.baseUrl);
  const name = policyModelName(ctx.runId, round);
  const signal = ctx.call.signal;
  const served = await loader.models(signal);
  if (!served.includes(name)) await loader.load(name, weightsPath(engine, model, round), signal);
  for (const other of served) {
    const earlier = policyRound(ctx.runId, other) ?? NaN;
    if (earlier < round && !(earlier === 0 && ctx.spec.frozenJudge)) await loader.unload(other, signal);
  }
  return { ...model, openai: { baseUrl: engine.baseUrl, model: name } };
}
