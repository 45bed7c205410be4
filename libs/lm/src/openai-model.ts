import OpenAI from 'openai';
import { CancelledError, throwIfAborted } from '@alignment/errors';
import { LmArgumentError, ModelDirectoryError } from './errors';
import { validatePrompts, DEFAULT_GENERATE_BATCH_ROWS, type FinishReason, type GenerateOptions, type GeneratedSample, type PromptGeneration, type PromptToGenerate } from './generate';
import { readModelDirectory, type ModelDirectory } from './model-dir';
import { isArgmax, requestSeed, validateSamplingParams, type SamplingParams } from './sampling';
import { scoreItemProblem, DEFAULT_SCORE_BATCH_ROWS, type ScoreItem, type ScoreOptions, type SequenceScore } from './score';
import { ChatTokenizer } from './tokenizer';

/** An OpenAI-compatible server serving a model (common.proto OpenAiEndpoint). */
export interface OpenAiEndpoint {
  /** http(s)://host:port/v1 */
  baseUrl: string;
  /** The name the server serves the model under. */
  model: string;
}

/** A request to the server failed (unreachable, a 5xx, an answer that is not what was asked for). */
export class OpenAiBackendError extends Error {
  constructor(endpoint: OpenAiEndpoint, reason: string) {
    super(`OpenAI-compatible server ${endpoint.baseUrl} (model ${endpoint.model}): ${reason}`);
    this.name = 'OpenAiBackendError';
  }
}

/** Throws LmArgumentError on `${field}.base_url` or `${field}.model` for an endpoint the backend cannot use. */
export function validateEndpoint(endpoint: OpenAiEndpoint, field: string): void {
  let url: URL;
  try {
    url = new URL(endpoint.baseUrl);
  } catch {
    throw new LmArgumentError(`${field}.base_url`, `must be an http(s) URL such as http://vllm:8000/v1, got '${endpoint.baseUrl}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LmArgumentError(`${field}.base_url`, `must be http:// or https://, got '${url.protocol}'`);
  if (endpoint.model.trim() === '') throw new LmArgumentError(`${field}.model`, 'is required (the model name the server serves)');
}

/** Requests in flight at once per call: the server batches them (vLLM's continuous batching). */
const MAX_CONCURRENT_REQUESTS = 8;
const REQUEST_TIMEOUT_MS = 10 * 60_000;

/** Runs `work` over `items` with at most `limit` in flight, results in input order. */
async function mapConcurrent<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * A causal LM served by an OpenAI-compatible server (vLLM, or the generator's own /v1 endpoint), used like
 * LanguageModel: prompts and responses are tokenized here with the export directory's tokenizer and chat template
 * and sent as token ids, so both backends see the same tokens (model.onnx is not loaded).
 *
 * Sampling sends one /v1/completions request per prompt with n, temperature, top_p, max_tokens, stop and the seed
 * requestSeed(seed, prompt index); finish_reason is recorded. Scoring sends prompt + response as one prompt with
 * echo, logprobs 0 and max_tokens 0 and sums the response tokens' echoed log-probs.
 */
export class OpenAiLanguageModel {
  private constructor(
    readonly model: ModelDirectory,
    readonly tokenizer: ChatTokenizer,
    readonly stopTokenIds: ReadonlySet<number>,
    readonly endpoint: OpenAiEndpoint,
    private readonly client: OpenAI,
  ) {}

  /** The tokenizer of `directory` (an ONNX export) and a client of the endpoint; nothing is sent yet. */
  static async load(directory: string, endpoint: OpenAiEndpoint): Promise<OpenAiLanguageModel> {
    const model = readModelDirectory(directory);
    const tokenizer = new ChatTokenizer(model);
    // OPENAI_API_KEY is sent as the bearer token (vLLM --api-key); servers without one ignore it.
    const client = new OpenAI({ baseURL: endpoint.baseUrl, apiKey: process.env.OPENAI_API_KEY || 'unused', maxRetries: 2, timeout: REQUEST_TIMEOUT_MS });
    return new OpenAiLanguageModel(model, tokenizer, new Set([tokenizer.eosTokenId, ...model.config.eosTokenIds]), endpoint, client);
  }

  get maxPositions(): number {
    return this.model.config.maxPositions;
  }

  async release(): Promise<void> {}

  /** As generate() of generate.ts: params.n samples per prompt, yielded batch by batch in prompt order. */
  async *generate(prompts: readonly PromptToGenerate[], params: SamplingParams, options: GenerateOptions = {}): AsyncGenerator<PromptGeneration[]> {
    validateSamplingParams(params);
    validatePrompts(this, prompts);
    const promptsPerBatch = Math.max(1, Math.floor((options.maxBatchRows ?? DEFAULT_GENERATE_BATCH_ROWS) / params.n));
    for (let start = 0; start < prompts.length; start += promptsPerBatch) {
      throwIfAborted(options.signal);
      const batch = prompts.slice(start, start + promptsPerBatch);
      yield await mapConcurrent(batch, MAX_CONCURRENT_REQUESTS, async (p) => ({ index: p.index, samples: await this.sample(p, params, options.signal) }));
    }
  }

  /** As scoreSequences() of score.ts: logp(y|x) of each item, from the server's echoed prompt log-probs. */
  async score(items: readonly ScoreItem[], options: ScoreOptions = {}): Promise<SequenceScore[]> {
    items.forEach((item, i) => {
      const problem = scoreItemProblem(this, item);
      if (problem) throw new LmArgumentError(`items[${i}]`, problem);
    });
    const rows = Math.max(1, options.maxBatchRows ?? DEFAULT_SCORE_BATCH_ROWS);
    const groups: number[][] = [];
    for (let start = 0; start < items.length; start += rows) groups.push(items.slice(start, start + rows).map((_, k) => start + k));
    const results: SequenceScore[] = new Array(items.length);
    let done = 0;
    await mapConcurrent(groups, MAX_CONCURRENT_REQUESTS, async (group) => {
      const scores = await this.scoreGroup(group.map((i) => items[i]), options.signal);
      group.forEach((i, k) => (results[i] = scores[k]));
      done += group.length;
      options.onProgress?.(done, items.length);
    });
    return results;
  }

  private async sample(prompt: PromptToGenerate, params: SamplingParams, signal?: AbortSignal): Promise<GeneratedSample[]> {
    const argmax = isArgmax(params);
    const body = {
      model: this.endpoint.model,
      prompt: prompt.promptIds,
      n: params.n,
      // The context bounds a sample as it does on ONNX; servers refuse prompt + max_tokens beyond it.
      max_tokens: Math.min(params.maxNewTokens, this.maxPositions - prompt.promptIds.length),
      temperature: argmax ? 0 : params.temperature,
      top_p: argmax ? 1 : params.topP,
      seed: requestSeed(params.seed, prompt.index),
      ...(params.stop.length > 0 ? { stop: params.stop } : {}),
      ...(!argmax && params.topK > 0 ? { top_k: params.topK } : {}),
      // The sampled tokens' ids (vLLM's extension; tokens read "token_id:<id>").
      logprobs: 0,
      return_tokens_as_token_ids: true,
    };
    const completion = await this.call((s) => this.client.completions.create(body as OpenAI.CompletionCreateParamsNonStreaming, { signal: s }), signal);
    if (completion.choices.length !== params.n) throw new OpenAiBackendError(this.endpoint, `asked for ${params.n} choices, got ${completion.choices.length}`);
    return [...completion.choices]
      .sort((a, b) => a.index - b.index)
      .map((choice) => {
        const finishReason = choice.finish_reason as string;
        if (finishReason !== 'stop' && finishReason !== 'length') throw new OpenAiBackendError(this.endpoint, `finish_reason '${finishReason}' (expected stop or length)`);
        return { text: choice.text, tokenIds: this.sampledIds(choice, finishReason), finishReason: finishReason as FinishReason };
      });
  }

  /** The sampled ids from "token_id:<id>" tokens; re-tokenized text for a server without that extension. */
  private sampledIds(choice: OpenAI.CompletionChoice, finishReason: FinishReason): number[] {
    const tokens = choice.logprobs?.tokens;
    if (tokens && tokens.length > 0 && tokens.every((t) => /^token_id:\d+$/.test(t))) return tokens.map((t) => Number(t.slice('token_id:'.length)));
    return this.tokenizer.encodeResponse(choice.text, { finished: finishReason === 'stop' });
  }

  private async scoreGroup(items: readonly ScoreItem[], signal?: AbortSignal): Promise<SequenceScore[]> {
    const body: OpenAI.CompletionCreateParamsNonStreaming = {
      model: this.endpoint.model,
      prompt: items.map((item) => [...item.promptIds, ...item.responseIds]),
      max_tokens: 0,
      echo: true,
      logprobs: 0,
      temperature: 0,
    };
    const completion = await this.call((s) => this.client.completions.create(body, { signal: s }), signal);
    const byIndex = new Map(completion.choices.map((c) => [c.index, c]));
    return items.map((item, i) => {
      const logprobs = byIndex.get(i)?.logprobs?.token_logprobs;
      const end = item.promptIds.length + item.responseIds.length;
      if (!logprobs || logprobs.length < end) {
        throw new OpenAiBackendError(this.endpoint, `echo of prompt ${i} returned ${logprobs?.length ?? 0} token log-probs, expected ${end}`);
      }
      const tokenLogps = logprobs.slice(item.promptIds.length, end);
      if (tokenLogps.some((v) => typeof v !== 'number' || !Number.isFinite(v))) throw new OpenAiBackendError(this.endpoint, `echo of prompt ${i} has a missing log-prob`);
      return { logp: tokenLogps.reduce((sum, v) => sum + v, 0), tokenLogps };
    });
  }

  /** One request; aborting `signal` cancels it (CancelledError), other failures are OpenAiBackendError. */
  private async call<R>(request: (signal?: AbortSignal) => Promise<R>, signal?: AbortSignal): Promise<R> {
    throwIfAborted(signal);
    try {
      return await request(signal);
    } catch (error) {
      if (signal?.aborted) throw new CancelledError('the request was cancelled');
      if (error instanceof OpenAI.APIError) throw new OpenAiBackendError(this.endpoint, `${error.status ?? 'no response'}: ${error.message}`);
      throw error;
    }
  }
}
