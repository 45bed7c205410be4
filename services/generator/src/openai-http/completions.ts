import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '@alignment/errors';
import { LmArgumentError, generate, promptProblem, scoreSequences, scoreItemProblem, type GeneratedSample, type LanguageModel, type SamplingParams } from '@alignment/lm';
import type { ChatRequest, CompletionRequest, PromptInput } from './requests';

// The generation and scoring behind /v1/completions and /v1/chat/completions, on the generator's ONNX Runtime.
// Prompt i of a request samples choice j from sampleRng(seed, i, j), so a request's seed fixes its choices, and the
// OpenAI backend (libs/lm openai-model.ts), which sends one prompt per request, draws what the ONNX backend draws.

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The per-token log-probs of a completion choice (OpenAI's legacy completions shape; top alternatives: null). */
export interface ChoiceLogprobs {
  tokens: string[];
  /** null for the first token of the text (nothing before it predicts it). */
  token_logprobs: (number | null)[];
  top_logprobs: null;
  text_offset: number[];
}

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; logprobs: ChoiceLogprobs | null; finish_reason: 'stop' | 'length' }[];
  usage: Usage;
}

export interface ChatResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: number; message: { role: 'assistant'; content: string }; logprobs: null; finish_reason: 'stop' | 'length' }[];
  usage: Usage;
}

function usage(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** Token ids of the prompts; an empty or overlong prompt is a 400 naming it. */
function promptIds(model: LanguageModel, prompts: readonly PromptInput[], maxTokens: number): number[][] {
  return prompts.map((p, i) => {
    const field = prompts.length === 1 ? 'prompt' : `prompt[${i}]`;
    if ('ids' in p) {
      const bad = p.ids.find((id) => id >= model.vocabSize);
      if (bad !== undefined) throw new InvalidArgumentError(field, `token id ${bad} is outside the vocabulary (${model.vocabSize})`);
    }
    const ids = 'ids' in p ? p.ids : model.tokenizer.encodeText(p.text);
    // An echo with max_tokens 0 may fill the whole context; anything else needs room for one more token.
    const problem = maxTokens === 0 ? (ids.length === 0 ? 'is empty after tokenization' : ids.length > model.maxPositions ? `has ${ids.length} tokens; the model's context is ${model.maxPositions}` : undefined) : promptProblem(model, ids);
    if (problem) throw new InvalidArgumentError(field, problem);
    return ids;
  });
}

/** n samples per prompt (n empty ones for max_tokens 0). */
async function sampleAll(model: LanguageModel, prompts: number[][], params: SamplingParams, maxTokens: number, signal?: AbortSignal): Promise<GeneratedSample[][]> {
  if (maxTokens === 0) return prompts.map(() => Array.from({ length: params.n }, () => ({ text: '', tokenIds: [], finishReason: 'length' as const })));
  const out: GeneratedSample[][] = [];
  for await (const batch of generate(model, prompts.map((promptIds, index) => ({ index, promptIds })), { ...params, maxNewTokens: maxTokens }, { signal })) {
    for (const result of batch) out[result.index] = result.samples;
  }
  return out;
}

/**
 * log p of tokens[from..] given the tokens before each (null where nothing precedes), for every sequence, in one
 * batched pass of scoreSequences: the raw model's log-softmax, as vLLM reports logprobs (no temperature).
 */
async function tokenLogprobs(model: LanguageModel, sequences: { tokens: number[]; from: number }[], signal?: AbortSignal): Promise<(number | null)[][]> {
  const items = sequences.map((s) => ({ promptIds: s.tokens.slice(0, 1), responseIds: s.tokens.slice(1) }));
  const scorable = items.map((item, i) => (item.responseIds.length > 0 && scoreItemProblem(model, item) === undefined ? i : -1)).filter((i) => i >= 0);
  const scores = await scoreSequences(model, scorable.map((i) => items[i]), { signal });
  const byIndex = new Map(scorable.map((i, k) => [i, scores[k].tokenLogps]));
  return sequences.map((s, i) => {
    const all: (number | null)[] = [null, ...(byIndex.get(i) ?? [])];
    return all.slice(s.from);
  });
}

function logprobsOf(model: LanguageModel, tokens: number[], values: (number | null)[], asIds: boolean): ChoiceLogprobs {
  const names = tokens.map((id) => (asIds ? `token_id:${id}` : model.tokenizer.decode([id], { skipSpecialTokens: false })));
  const offsets: number[] = [];
  let offset = 0;
  for (const name of names) {
    offsets.push(offset);
    offset += name.length;
  }
  return { tokens: names, token_logprobs: values, top_logprobs: null, text_offset: offsets };
}

/** POST /v1/completions on a loaded model. max_tokens defaults to 16 (OpenAI's default). */
export async function complete(model: LanguageModel, request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResponse> {
  const maxTokens = request.maxTokens ?? 16;
  const prompts = promptIds(model, request.prompts, maxTokens);
  const samples = await sampleAll(model, prompts, request.params, maxTokens, signal);
  const flat = prompts.flatMap((ids, i) => samples[i].map((sample) => ({ ids, sample })));
  const logprobs = request.logprobs
    ? await tokenLogprobs(model, flat.map(({ ids, sample }) => ({ tokens: [...ids, ...sample.tokenIds], from: request.echo ? 0 : ids.length })), signal)
    : undefined;
  const choices = flat.map(({ ids, sample }, k) => ({
    index: k,
    text: (request.echo ? model.tokenizer.decode(ids) : '') + sample.text,
    logprobs: logprobs ? logprobsOf(model, request.echo ? [...ids, ...sample.tokenIds] : sample.tokenIds, logprobs[k], request.tokensAsIds) : null,
    finish_reason: sample.finishReason,
  }));
  const completionTokens = flat.reduce((sum, { sample }) => sum + sample.tokenIds.length, 0);
  return {
    id: `cmpl-${randomUUID()}`,
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices,
    usage: usage(prompts.reduce((sum, ids) => sum + ids.length, 0), completionTokens),
  };
}

/** POST /v1/chat/completions on a loaded model: the chat template renders the messages; max tokens default to the context. */
export async function chat(model: LanguageModel, request: ChatRequest, signal?: AbortSignal): Promise<ChatResponse> {
  let ids: number[];
  try {
    ids = model.tokenizer.encodePrompt(request.messages, { strings: 'chat-template', field: 'messages' });
  } catch (error) {
    if (error instanceof LmArgumentError) throw new InvalidArgumentError('messages', error.reason);
    throw error;
  }
  const problem = promptProblem(model, ids);
  if (problem) throw new InvalidArgumentError('messages', problem);
  const maxTokens = request.maxTokens ?? model.maxPositions - ids.length;
  const [samples] = await sampleAll(model, [ids], request.params, maxTokens, signal);
  return {
    id: `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices: samples.map((s, j) => ({ index: j, message: { role: 'assistant', content: s.text }, logprobs: null, finish_reason: s.finishReason })),
    usage: usage(ids.length, samples.reduce((sum, s) => sum + s.tokenIds.length, 0)),
  };
}
