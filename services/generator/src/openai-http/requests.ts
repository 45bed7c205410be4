import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '@alignment/errors';
import { LmArgumentError, MAX_SAMPLES_PER_PROMPT, validateSamplingParams, type ChatMessage, type SamplingParams } from '@alignment/lm';
import { requireTextWithinLimit } from '@alignment/service-kit';

// The bodies of POST /v1/completions and /v1/chat/completions, checked: a field of the wrong type or out of range
// is an InvalidArgumentError naming it (the server answers 400 with an OpenAI-style error whose `param` is it).
// Fields this server does not know are ignored, as OpenAI clients send some (user, …).

/** A /v1/completions prompt: raw text (tokenized without the chat template or added special tokens) or token ids. */
export type PromptInput = { text: string } | { ids: number[] };

/** Sampling of either endpoint; maxTokens may be 0 only for an echo (scoring the prompt). */
export interface EndpointSampling {
  params: SamplingParams;
  /** New tokens per choice; undefined = the endpoint's default. */
  maxTokens: number | undefined;
}

export interface CompletionRequest extends EndpointSampling {
  model: string;
  prompts: PromptInput[];
  /** Return the prompt before each choice's text (and its tokens' log-probs with logprobs). */
  echo: boolean;
  /** Return each token's log-prob (`logprobs: 0`; top alternatives are not computed). */
  logprobs: boolean;
  /** vLLM's extension: name tokens "token_id:<id>" in logprobs.tokens. */
  tokensAsIds: boolean;
}

export interface ChatRequest extends EndpointSampling {
  model: string;
  messages: ChatMessage[];
}

type Body = Record<string, unknown>;

function fail(field: string, reason: string): never {
  throw new InvalidArgumentError(field, reason);
}

/** The parsed JSON body as an object (anything else is a 400 on `body`). */
export function requireObject(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) fail('body', 'must be a JSON object');
  return body as Body;
}

const present = (body: Body, field: string) => body[field] !== undefined && body[field] !== null;

function optionalNumber(body: Body, field: string, check: (v: number) => boolean, range: string): number | undefined {
  if (!present(body, field)) return undefined;
  const v = body[field];
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) fail(field, `must be ${range}, got ${JSON.stringify(v)}`);
  return v;
}

function optionalInteger(body: Body, field: string, min: number, max: number): number | undefined {
  return optionalNumber(body, field, (v) => Number.isInteger(v) && v >= min && v <= max, `an integer in [${min}, ${max}]`);
}

function optionalBoolean(body: Body, field: string): boolean {
  if (!present(body, field)) return false;
  if (typeof body[field] !== 'boolean') fail(field, `must be true or false, got ${JSON.stringify(body[field])}`);
  return body[field] as boolean;
}

function requireModel(body: Body): string {
  const model = body.model;
  if (typeof model !== 'string' || model.trim() === '') fail('model', 'is required: the name of a served model (GET /v1/models)');
  return model;
}

function stops(body: Body): string[] {
  if (!present(body, 'stop')) return [];
  const raw = body.stop;
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length > 4) fail('stop', 'must be a string or an array of at most 4 strings');
  list.forEach((s, i) => {
    if (typeof s !== 'string' || s === '') fail(`stop[${i}]`, 'must be a non-empty string');
    requireTextWithinLimit(`stop[${i}]`, s);
  });
  return list as string[];
}

/** A seed the request left unset: a fresh random one (OpenAI's meaning: not reproducible). */
function randomSeed(): bigint {
  return randomBytes(8).readBigUInt64BE();
}

/** n, temperature, top_p, top_k, seed, stop and the max tokens field of either endpoint, checked. */
function sampling(body: Body, maxTokensField: string): EndpointSampling {
  if (present(body, 'stream') && body.stream !== false) fail('stream', 'streaming is not supported: leave it unset or false');
  const n = optionalInteger(body, 'n', 1, MAX_SAMPLES_PER_PROMPT) ?? 1;
  const temperature = optionalNumber(body, 'temperature', (v) => v >= 0 && v <= 2, 'a number in [0, 2]') ?? 1;
  const topP = optionalNumber(body, 'top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]') ?? 1;
  // vLLM's extension; -1 (vLLM's "off") and 0 both mean no top-k filtering.
  const topK = Math.max(0, optionalInteger(body, 'top_k', -1, 1_000_000_000) ?? 0);
  const seed = optionalInteger(body, 'seed', 0, Number.MAX_SAFE_INTEGER);
  const maxTokens = optionalInteger(body, maxTokensField, 0, 1_000_000_000);
  const params: SamplingParams = {
    n,
    temperature,
    topP,
    topK,
    maxNewTokens: Math.max(1, maxTokens ?? 1),
    stop: stops(body),
    seed: seed === undefined ? randomSeed() : BigInt(seed),
    greedy: false,
  };
  try {
    validateSamplingParams(params);
  } catch (error) {
    if (error instanceof LmArgumentError) fail(error.field === 'max_new_tokens' ? maxTokensField : error.field, error.reason);
    throw error;
  }
  return { params, maxTokens };
}

function prompts(body: Body): PromptInput[] {
  const raw = body.prompt;
  const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0);
  if (typeof raw === 'string') return [{ text: requireTextWithinLimit('prompt', raw) }];
  if (isIds(raw)) return [{ ids: raw }];
  if (!Array.isArray(raw) || raw.length === 0) fail('prompt', 'must be a string, an array of strings, an array of token ids or an array of such arrays');
  return raw.map((p, i): PromptInput => {
    if (typeof p === 'string') return { text: requireTextWithinLimit(`prompt[${i}]`, p) };
    if (isIds(p)) return { ids: p };
    return fail(`prompt[${i}]`, 'must be a string or a non-empty array of token ids (integers >= 0)');
  });
}

/** POST /v1/completions. */
export function parseCompletionRequest(input: unknown): CompletionRequest {
  const body = requireObject(input);
  const model = requireModel(body);
  const list = prompts(body);
  const logprobs = optionalInteger(body, 'logprobs', 0, 20);
  if (logprobs !== undefined && logprobs > 0) fail('logprobs', `only 0 is supported (each token's own log-prob; top alternatives are not computed), got ${logprobs}`);
  const echo = optionalBoolean(body, 'echo');
  const s = sampling(body, 'max_tokens');
  if (s.maxTokens === 0 && !echo) fail('max_tokens', 'must be >= 1 (0 only with echo: true, to score the prompt)');
  return { model, prompts: list, echo, logprobs: logprobs === 0, tokensAsIds: optionalBoolean(body, 'return_tokens_as_token_ids'), ...s };
}

const ROLES = new Set(['system', 'user', 'assistant']);

/** POST /v1/chat/completions (max_completion_tokens, or the older max_tokens). */
export function parseChatRequest(input: unknown): ChatRequest {
  const body = requireObject(input);
  const model = requireModel(body);
  const raw = body.messages;
  if (!Array.isArray(raw) || raw.length === 0) fail('messages', 'must be a non-empty array of {role, content}');
  const messages = raw.map((m: unknown, i): ChatMessage => {
    const message = m as { role?: unknown; content?: unknown } | null;
    if (typeof message?.role !== 'string' || !ROLES.has(message.role)) fail(`messages[${i}].role`, 'must be system, user or assistant');
    if (typeof message.content !== 'string') fail(`messages[${i}].content`, 'must be a string');
    return { role: message.role, content: requireTextWithinLimit(`messages[${i}].content`, message.content) };
  });
  if (present(body, 'logprobs') && body.logprobs !== false) fail('logprobs', 'is not supported on /v1/chat/completions: use /v1/completions with logprobs 0');
  const field = present(body, 'max_completion_tokens') ? 'max_completion_tokens' : 'max_tokens';
  const s = sampling(body, field);
  if (s.maxTokens === 0) fail(field, 'must be >= 1');
  return { model, messages, ...s };
}
