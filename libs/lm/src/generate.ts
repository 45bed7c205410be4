import { throwIfAborted } from '@alignment/errors';
import { LmArgumentError } from './errors';
import { selectKvRows, type KvCache } from './kv-cache';
import type { LanguageModel } from './language-model';
import { argmaxRow, isArgmax, sampleFromProbs, sampleRng, validateSamplingParams, type Rng, type SamplingParams } from './sampling';

/** `stop`: EOS or a stop string ended the sample; `length`: max_new_tokens or the model's context did. */
export type FinishReason = 'stop' | 'length';

export interface GeneratedSample {
  /** The response text: special tokens skipped, cut before the first stop string, EOS not included. */
  text: string;
  /** Every sampled token, the final EOS included. */
  tokenIds: number[];
  finishReason: FinishReason;
}

export interface PromptToGenerate {
  /** Index of the prompt in the whole prompt set; it selects the samples' random streams (see sampleRng). */
  index: number;
  /** The prompt's token ids (ChatTokenizer.encodePrompt). */
  promptIds: number[];
}

export interface PromptGeneration {
  index: number;
  samples: GeneratedSample[];
}

export interface GenerateOptions {
  signal?: AbortSignal;
  /** KV-cache rows decoded together (prompts × n). Default 32. */
  maxBatchRows?: number;
  /**
   * Prompt positions fed per prefill call. A prefill computes no logits but the last position's (onnx-graph.ts);
   * what grows with the chunk is attention, rows · heads · chunk · context scores, so long prompts go in chunks
   * (the KV cache carries the earlier ones). Default 256.
   */
  prefillChunk?: number;
}

export const DEFAULT_GENERATE_BATCH_ROWS = 32;
export const DEFAULT_PREFILL_CHUNK = 256;

/** Why the model cannot continue a prompt (empty, or no room left in the context for one token), or undefined. */
export function promptProblem(model: { readonly maxPositions: number }, promptIds: readonly number[]): string | undefined {
  if (promptIds.length === 0) return 'is empty after tokenization';
  if (promptIds.length >= model.maxPositions) {
    return `has ${promptIds.length} tokens after the chat template; the model's context is ${model.maxPositions} tokens, leaving no room for a response`;
  }
  return undefined;
}

/** Throws LmArgumentError on `prompts[index]` for the first prompt the model cannot continue (promptProblem). */
export function validatePrompts(model: { readonly maxPositions: number }, prompts: readonly PromptToGenerate[]): void {
  for (const p of prompts) {
    const problem = promptProblem(model, p.promptIds);
    if (problem) throw new LmArgumentError(`prompts[${p.index}]`, problem);
  }
}

/**
 * Samples `params.n` responses per prompt with a KV cache, batch by batch. Yields each batch's results, in prompt
 * order, as soon as the batch is done, so callers can write and report progress while the rest runs. The signal
 * is checked before every decoding step: aborting stops the work within one step (CancelledError).
 *
 * Every sample draws from its own random stream (sampleRng(seed, prompt index, sample index)), so the results
 * do not depend on the batch size or on how the prompt set is sharded, up to floating-point differences
 * between batch shapes that can flip a near-tie.
 */
export async function* generate(
  model: LanguageModel,
  prompts: readonly PromptToGenerate[],
  params: SamplingParams,
  options: GenerateOptions = {},
): AsyncGenerator<PromptGeneration[]> {
  validateSamplingParams(params);
  validatePrompts(model, prompts);
  const rowsPerBatch = Math.max(1, options.maxBatchRows ?? DEFAULT_GENERATE_BATCH_ROWS);
  const promptsPerBatch = Math.max(1, Math.floor(rowsPerBatch / params.n));
  for (let start = 0; start < prompts.length; start += promptsPerBatch) {
    throwIfAborted(options.signal);
    yield await generateBatch(model, prompts.slice(start, start + promptsPerBatch), params, options);
  }
}

interface Row {
  prompt: number;
  rng: Rng;
  promptLength: number;
  /** Left padding of this row in the current cache. */
  pad: number;
  tokens: number[];
  finish?: FinishReason;
}

async function generateBatch(
  model: LanguageModel,
  batch: readonly PromptToGenerate[],
  params: SamplingParams,
  options: GenerateOptions,
): Promise<PromptGeneration[]> {
  const { lm, tokenizer } = model;
  const vocab = lm.vocabSize;
  const argmax = isArgmax(params);
  const invTemperature = argmax ? 1 : 1 / params.temperature;
  const longest = Math.max(...batch.map((p) => p.promptIds.length));

  // Prefill: the prompts left-padded to one length, so every row's last prompt token is in the last column.
  const prefillRows = batch.length;
  const pads = batch.map((p) => longest - p.promptIds.length);
  const chunk = Math.max(1, options.prefillChunk ?? DEFAULT_PREFILL_CHUNK);
  let cache: KvCache = lm.emptyCache(prefillRows);
  let probs: Float32Array | undefined;
  let argmaxIds: BigInt64Array | undefined;
  for (let s = 0; s < longest; s += chunk) {
    throwIfAborted(options.signal);
    const c = Math.min(chunk, longest - s);
    const inputIds = new BigInt64Array(prefillRows * c);
    const positionIds = new BigInt64Array(prefillRows * c);
    const attentionMask = new BigInt64Array(prefillRows * (s + c));
    for (let r = 0; r < prefillRows; r++) {
      for (let col = 0; col < s + c; col++) attentionMask[r * (s + c) + col] = col >= pads[r] ? 1n : 0n;
      for (let j = 0; j < c; j++) {
        const col = s + j;
        if (col >= pads[r]) {
          inputIds[r * c + j] = BigInt(batch[r].promptIds[col - pads[r]]);
          positionIds[r * c + j] = BigInt(col - pads[r]);
        }
      }
    }
    const last = s + c === longest;
    const out = await lm.forward({
      batch: prefillRows,
      seq: c,
      inputIds,
      attentionMask,
      positionIds,
      past: cache,
      invTemperature,
      want: last ? (argmax ? { nextArgmax: true } : { nextProbs: true }) : {},
    });
    cache = out.present;
    probs = out.nextProbs;
    argmaxIds = out.nextArgmax;
  }

  // Each prompt's cache row serves its n samples.
  const rows: Row[] = [];
  const source: number[] = [];
  batch.forEach((p, i) => {
    for (let j = 0; j < params.n; j++) {
      rows.push({ prompt: i, rng: sampleRng(params.seed, p.index, j), promptLength: p.promptIds.length, pad: pads[i], tokens: [] });
      source.push(i);
    }
  });
  cache = selectKvRows(cache, source);
  // Row k of the latest probabilities; the first step reads the prompt's prefill row.
  let probRow = source.slice();
  let active = rows.slice();
  const maxStopChars = Math.max(0, ...params.stop.map((s) => s.length));

  for (;;) {
    for (let k = 0; k < active.length; k++) {
      const row = active[k];
      const token = argmax
        ? argmaxIds
          ? Number(argmaxIds[probRow[k]])
          : argmaxRow(probs!, probRow[k] * vocab, vocab)
        : sampleFromProbs(probs!, probRow[k] * vocab, vocab, params.topK, params.topP, row.rng.nextDouble());
      row.tokens.push(token);
      if (model.stopTokenIds.has(token)) row.finish = 'stop';
      else if (maxStopChars > 0 && endsWithStop(tokenizer.decode(row.tokens.slice(-(maxStopChars + 8))), params.stop)) row.finish = 'stop';
      else if (row.tokens.length >= params.maxNewTokens || row.promptLength + row.tokens.length >= model.maxPositions) row.finish = 'length';
    }
    const remaining = active.map((row, k) => [row, k] as const).filter(([row]) => row.finish === undefined);
    if (remaining.length === 0) break;
    throwIfAborted(options.signal);
    if (remaining.length < active.length) {
      // Finished rows leave the batch, and with them the left padding no remaining row needs.
      const drop = Math.min(...remaining.map(([row]) => row.pad));
      cache = selectKvRows(cache, remaining.map(([, k]) => k), drop);
      for (const [row] of remaining) row.pad -= drop;
      active = remaining.map(([row]) => row);
    }
    const b = active.length;
    const width = cache.length + 1;
    const inputIds = new BigInt64Array(b);
    const positionIds = new BigInt64Array(b);
    const attentionMask = new BigInt64Array(b * width);
    active.forEach((row, k) => {
      inputIds[k] = BigInt(row.tokens[row.tokens.length - 1]);
      positionIds[k] = BigInt(cache.length - row.pad);
      attentionMask.fill(1n, k * width + row.pad, (k + 1) * width);
    });
    const out = await lm.forward({
      batch: b,
      seq: 1,
      inputIds,
      attentionMask,
      positionIds,
      past: cache,
      invTemperature,
      want: argmax ? { nextArgmax: true } : { nextProbs: true },
    });
    cache = out.present;
    probs = out.nextProbs;
    argmaxIds = out.nextArgmax;
    probRow = active.map((_, k) => k);
  }

  return batch.map((p, i) => ({
    index: p.index,
    samples: rows.filter((row) => row.prompt === i).map((row) => finishSample(model, row, params.stop)),
  }));
}

function endsWithStop(tail: string, stops: readonly string[]): boolean {
  return stops.some((s) => tail.includes(s));
}

function finishSample(model: LanguageModel, row: Row, stops: readonly string[]): GeneratedSample {
  const last = row.tokens[row.tokens.length - 1];
  const body = model.stopTokenIds.has(last) ? row.tokens.slice(0, -1) : row.tokens;
  let text = model.tokenizer.decode(body);
  let finish = row.finish ?? 'length';
  // The first stop string in the whole text wins, also one that the step-wise check saw only in part.
  const cut = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
  if (Number.isFinite(cut)) {
    text = text.slice(0, cut);
    finish = 'stop';
  }
  return { text, tokenIds: row.tokens, finishReason: finish };
}
