import { generate, type GenerateOptions, type PromptGeneration, type PromptToGenerate } from './generate';
import { LanguageModel } from './language-model';
import { ModelCache, type Lease } from './model-cache';
import { acquireModel, type ModelLocation } from './model-ref';
import { OpenAiLanguageModel, validateEndpoint, type OpenAiEndpoint } from './openai-model';
import type { SamplingParams } from './sampling';
import { scoreSequences, type ScoreItem, type ScoreOptions, type SequenceScore } from './score';

/**
 * A causal LM behind one of the two backends a ModelRef chooses (common.proto): the embedded ONNX Runtime
 * (LanguageModel, the default) or an OpenAI-compatible server (OpenAiLanguageModel, ModelRef.openai set). Both
 * tokenize with the export directory's tokenizer and chat template.
 */
export type CausalModel = LanguageModel | OpenAiLanguageModel;

/** A ModelRef as the generator and the judge use it: the ONNX export directory, and the server, if one serves it. */
export type CausalModelRef = ModelLocation & { openai?: OpenAiEndpoint };

/** Causal models kept loaded between requests (see ModelCache), keyed by directory and server. */
export function causalModelCache(capacity: number): ModelCache<CausalModel, OpenAiEndpoint> {
  return new ModelCache<CausalModel, OpenAiEndpoint>((dir, endpoint) => (endpoint ? OpenAiLanguageModel.load(dir, endpoint) : LanguageModel.load(dir)), capacity);
}

/**
 * acquireModel for a ModelRef at request path `field` (e.g. `model`, `spa_implicit.policy`): problems with the
 * directory are LmArgumentError on `${field}.onnx.uri` / `.sha256`, with the server on `${field}.openai.base_url` /
 * `.model`.
 */
export async function acquireCausalModel(cache: ModelCache<CausalModel, OpenAiEndpoint>, ref: CausalModelRef | undefined, field: string): Promise<Lease<CausalModel>> {
  const endpoint = ref?.openai;
  if (endpoint) validateEndpoint(endpoint, `${field}.openai`);
  const variant = endpoint ? { key: `${endpoint.baseUrl}\0${endpoint.model}`, value: endpoint } : undefined;
  return acquireModel(cache, ref, `${field}.onnx`, variant);
}

/** generate() on whichever backend serves the model. */
export function generateWith(model: CausalModel, prompts: readonly PromptToGenerate[], params: SamplingParams, options: GenerateOptions = {}): AsyncGenerator<PromptGeneration[]> {
  return model instanceof OpenAiLanguageModel ? model.generate(prompts, params, options) : generate(model, prompts, params, options);
}

/** scoreSequences() on whichever backend serves the model. */
export function scoreWith(model: CausalModel, items: readonly ScoreItem[], options: ScoreOptions = {}): Promise<SequenceScore[]> {
  return model instanceof OpenAiLanguageModel ? model.score(items, options) : scoreSequences(model, items, options);
}
