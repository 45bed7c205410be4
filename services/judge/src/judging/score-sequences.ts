import { InvalidArgumentError } from '@alignment/errors';
import {
  LmArgumentError,
  acquireCausalModel,
  scoreItemProblem,
  scoreWith,
  type CausalModel,
  type CausalModelRef,
  type ModelCache,
  type OpenAiEndpoint,
  type ScoreItem,
  stringPromptEncoding,
} from '@alignment/lm';
import type { PromptEncoding } from '@alignment/contracts';

/** One ScoreSequences request, as the domain sees it. */
export interface ScoreJob {
  model: CausalModelRef | undefined;
  items: { prompt: string; response: string }[];
  perToken: boolean;
  /** How the prompts are encoded (request field `prompt_encoding`); unset = raw text. */
  promptEncoding?: PromptEncoding;
}

export interface SequenceScoreResult {
  logp: number;
  numTokens: number;
  /** Empty unless the job asked for them. */
  tokenLogps: number[];
}

/** The largest number of items one request may carry (the response holds them all). */
export const MAX_SCORE_ITEMS = 10_000;

/**
 * logp(y|x) of each item under the model, exactly as the trainer computes it (the prompt as raw text or through the
 * chat template, as job.promptEncoding says; EOS appended to the response, prompt tokens masked). Any item that cannot be scored fails the request with
 * INVALID_ARGUMENT naming it (`items[3]`): a caller scoring explicit items wants all of them or to know why not.
 */
export async function scoreItems(job: ScoreJob, models: ModelCache<CausalModel, OpenAiEndpoint>, signal?: AbortSignal): Promise<SequenceScoreResult[]> {
  if (job.items.length === 0) throw new InvalidArgumentError('items', 'must not be empty');
  if (job.items.length > MAX_SCORE_ITEMS) throw new InvalidArgumentError('items', `at most ${MAX_SCORE_ITEMS} per request, got ${job.items.length}`);
  const strings = stringPromptEncoding(job.promptEncoding);
  const lease = await acquireCausalModel(models, job.model, 'model');
  try {
    const model = lease.value;
    if (strings === 'chat-template' && !model.tokenizer.hasChatTemplate) {
      throw new InvalidArgumentError('prompt_encoding', 'is PROMPT_ENCODING_CHAT_TEMPLATE but the model directory has no chat template: encode the prompts as raw text');
    }
    const items: ScoreItem[] = job.items.map((item, i) => {
      let scored: ScoreItem;
      try {
        scored = { promptIds: model.tokenizer.encodePrompt(item.prompt, { strings }), responseIds: model.tokenizer.encodeResponse(item.response) };
      } catch (error) {
        if (error instanceof LmArgumentError) throw new InvalidArgumentError(`items[${i}].prompt`, error.reason);
        throw error;
      }
      const problem = scoreItemProblem(model, scored);
      if (problem) throw new InvalidArgumentError(`items[${i}]`, problem);
      return scored;
    });
    const scores = await scoreWith(model, items, { signal });
    return scores.map((s) => ({ logp: s.logp, numTokens: s.tokenLogps.length, tokenLogps: job.perToken ? s.tokenLogps : [] }));
  } finally {
    lease.release();
  }
}
