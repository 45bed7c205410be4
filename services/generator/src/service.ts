import type * as grpc from '@grpc/grpc-js';
import { GeneratorService, type GenerateRequest, type GenerateResponse } from '@alignment/contracts';
import { causalModelCache, type CausalModel, type ModelCache, type OpenAiEndpoint } from '@alignment/lm';
import { callAbortSignal, type ServiceBinding } from '@alignment/service-kit';
import { generateResponses, type GenerationDeps, type GenerationJob } from './generation/generate-responses';

/** GenerateRequest → the domain's job (shape only; validation is the domain's and names the request fields). */
export function toJob(request: GenerateRequest): GenerationJob {
  const prompts = request.prompts;
  return {
    model: request.model?.onnx
      ? {
          uri: request.model.onnx.uri,
          sha256: request.model.onnx.sha256,
          ...(request.model.openai ? { openai: { baseUrl: request.model.openai.baseUrl, model: request.model.openai.model } } : {}),
        }
      : undefined,
    prompts:
      prompts?.$case === 'inlinePrompts'
        ? { kind: 'inline', prompts: prompts.value.prompts }
        : prompts?.$case === 'promptSet'
          ? { kind: 'artifact', uri: prompts.value.uri, sha256: prompts.value.sha256 }
          : undefined,
    params: request.params,
    shard: request.shard,
    outputUri: request.outputUri,
    promptEncoding: request.promptEncoding,
  };
}

export function defaultModelCache(capacity = Number(process.env.MODEL_CACHE_SIZE) || 2): ModelCache<CausalModel, OpenAiEndpoint> {
  return causalModelCache(capacity);
}

export function generatorBinding(deps: GenerationDeps): ServiceBinding {
  const generateHandler = async (request: GenerateRequest, call: grpc.ServerWritableStream<GenerateRequest, GenerateResponse>) => {
    const outcome = await generateResponses(toJob(request), deps, {
      signal: callAbortSignal(call),
      onProgress: (p) =>
        call.write({ event: { $case: 'progress', value: { done: p.done, total: p.total, unit: 'prompts', tokensPerSecond: p.tokensPerSecond, etaSeconds: p.etaSeconds } } }),
    });
    call.write({
      event: {
        $case: 'result',
        value: {
          responses: { uri: outcome.responses.uri, sha256: outcome.responses.sha256, sizeBytes: outcome.responses.sizeBytes },
          numPrompts: outcome.numPrompts,
          numResponses: outcome.numResponses,
          numGeneratedTokens: outcome.numGeneratedTokens,
          tokensPerSecond: outcome.tokensPerSecond,
        },
      },
    });
  };
  return {
    definition: GeneratorService as unknown as ServiceBinding['definition'],
    handlers: { generate: generateHandler },
  };
}
