import type * as grpc from '@grpc/grpc-js';
import { GeneratorService, type GenerateRequest, type GenerateResponse } from '@alignment/contracts';
import { CancelledError as LmCancelledError, LanguageModel, ModelCache } from '@alignment/lm';
import { CancelledError, callAbortSignal, type ServiceBinding } from '@alignment/service-kit';
import { runGeneration, type GenerationDeps, type GenerationJob } from './generation/run';

/** GenerateRequest → the domain's job (shape only; validation is the domain's and names the request fields). */
export function toJob(request: GenerateRequest): GenerationJob {
  const prompts = request.prompts;
  return {
    model: request.model?.onnx ? { uri: request.model.onnx.uri, sha256: request.model.onnx.sha256 } : undefined,
    prompts:
      prompts?.$case === 'inlinePrompts'
        ? { kind: 'inline', prompts: prompts.value.prompts }
        : prompts?.$case === 'promptSet'
          ? { kind: 'artifact', uri: prompts.value.uri, sha256: prompts.value.sha256 }
          : undefined,
    params: request.params,
    shard: request.shard,
    outputUri: request.outputUri,
  };
}

/** The runtime's cancellation as the kit's, so the call ends CANCELLED rather than as a server fault. */
export function asCancelled(error: unknown): unknown {
  return error instanceof LmCancelledError ? new CancelledError(error.message) : error;
}

export function defaultModelCache(capacity = Number(process.env.MODEL_CACHE_SIZE) || 2): ModelCache<LanguageModel> {
  return new ModelCache((dir) => LanguageModel.load(dir), capacity);
}

export function generatorBinding(deps: GenerationDeps): ServiceBinding {
  const generateHandler = async (request: GenerateRequest, call: grpc.ServerWritableStream<GenerateRequest, GenerateResponse>) => {
    try {
      const outcome = await runGeneration(toJob(request), deps, {
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
    } catch (error) {
      throw asCancelled(error);
    }
  };
  return {
    definition: GeneratorService as unknown as ServiceBinding['definition'],
    handlers: { generate: generateHandler },
  };
}
