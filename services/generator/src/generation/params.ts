import { InvalidArgumentError } from '@alignment/errors';
import { LmArgumentError, PAPER_SAMPLING, validateSamplingParams, type SamplingParams } from '@alignment/lm';

/** common.proto GenerationParams as the request carries it: zero values and unset optionals mean "default". */
export interface GenerationParamsInput {
  n: number;
  temperature?: number;
  topP?: number;
  topK: number;
  maxNewTokens: number;
  stop: string[];
  seed: number;
  greedy: boolean;
}

/**
 * The sampling parameters of a request with the paper's defaults (SPA §4: n 2, temperature 0.7, top_p 1, 300 new
 * tokens) for what it left unset, checked. Errors name the request field (`params.top_p`, …).
 */
export function resolveSamplingParams(input: GenerationParamsInput | undefined): SamplingParams {
  const params: SamplingParams = {
    n: input?.n || PAPER_SAMPLING.n,
    temperature: input?.temperature ?? PAPER_SAMPLING.temperature,
    topP: input?.topP ?? PAPER_SAMPLING.topP,
    topK: input?.topK ?? PAPER_SAMPLING.topK,
    maxNewTokens: input?.maxNewTokens || PAPER_SAMPLING.maxNewTokens,
    stop: input?.stop ?? [],
    seed: BigInt(input?.seed ?? 0),
    greedy: input?.greedy ?? false,
  };
  try {
    validateSamplingParams(params);
  } catch (error) {
    if (error instanceof LmArgumentError) throw new InvalidArgumentError(`params.${error.field}`, error.reason);
    throw error;
  }
  return params;
}
