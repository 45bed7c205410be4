import { throwIfAborted } from '@alignment/errors';
import { LmArgumentError } from './errors';
import type { LanguageModel } from './language-model';

export interface ScoreItem {
  /** The prompt's token ids (ChatTokenizer.encodePrompt). */
  promptIds: readonly number[];
  /** The response's token ids as the trainer scores them (ChatTokenizer.encodeResponse: text, then EOS if finished). */
  responseIds: readonly number[];
}

export interface SequenceScore {
  /** logp(y|x): the sum of the response tokens' log-probabilities, in nats (docs/algorithm.md notation). */
  logp: number;
  /** log p of each response token given everything before it. */
  tokenLogps: number[];
}

export interface ScoreOptions {
  signal?: AbortSignal;
  /** Sequences per forward pass at most. Default 16. */
  maxBatchRows?: number;
  /**
   * Bound on the [rows, positions, vocab] logits one forward pass makes onnxruntime hold. Sequences are fed in
   * chunks of positions (the KV cache carries the earlier ones), so memory stays flat as sequences grow.
   * Default 2^24 (64 MiB of float32).
   */
  maxLogitsElements?: number;
  /** Called after each batch with the number of sequences scored so far. */
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_SCORE_BATCH_ROWS = 16;
/** 2^24 float32 logits: 64 MiB, e.g. 16 sequences × 32 positions of a 32K vocabulary. */
export const DEFAULT_MAX_LOGITS_ELEMENTS = 1 << 24;
// Fewer positions than this per call and the per-call overhead dominates, so the batch shrinks first.
const MIN_CHUNK_POSITIONS = 64;

/** Why the model cannot score an item (empty prompt or response, longer than the context), or undefined. */
export function scoreItemProblem(model: { readonly maxPositions: number }, item: ScoreItem): string | undefined {
  if (item.promptIds.length === 0) return 'the prompt has no tokens (the first response token needs one before it)';
  if (item.responseIds.length === 0) return 'the response has no tokens';
  const total = item.promptIds.length + item.responseIds.length;
  if (total > model.maxPositions) {
    return `prompt + response are ${total} tokens, more than the model's context of ${model.maxPositions}`;
  }
  return undefined;
}

/**
 * Log-probabilities of responses given prompts (prompt tokens masked), as the trainer computes them
 * (services/trainer/src/alignment_trainer/training/logprobs.py sequence_logps): position t's logits score token t + 1.
 *
 * Sequences are sorted by length and batched (right-padded), and each batch is fed in chunks of positions sized so
 * that rows · positions · vocab ≤ maxLogitsElements; onnxruntime reduces each chunk's logits to the targets'
 * log-probs itself (onnx-graph.ts), so JavaScript receives rows · positions floats. Sums are float64.
 * An item the model cannot score (scoreItemProblem) throws LmArgumentError on `items[i]`.
 */
export async function scoreSequences(model: LanguageModel, items: readonly ScoreItem[], options: ScoreOptions = {}): Promise<SequenceScore[]> {
  items.forEach((item, i) => {
    const problem = scoreItemProblem(model, item);
    if (problem) throw new LmArgumentError(`items[${i}]`, problem);
  });
  const vocab = model.vocabSize;
  const budget = options.maxLogitsElements ?? DEFAULT_MAX_LOGITS_ELEMENTS;
  const maxRows = Math.max(1, options.maxBatchRows ?? DEFAULT_SCORE_BATCH_ROWS);
  const length = (i: number) => items[i].promptIds.length + items[i].responseIds.length;
  const order = items.map((_, i) => i).sort((a, b) => length(b) - length(a) || a - b);
  const results: SequenceScore[] = new Array(items.length);
  let done = 0;
  for (let start = 0; start < order.length; ) {
    throwIfAborted(options.signal);
    const longest = length(order[start]);
    const rowsByBudget = Math.floor(budget / (vocab * Math.min(longest, MIN_CHUNK_POSITIONS)));
    const rows = Math.max(1, Math.min(maxRows, rowsByBudget, order.length - start));
    const batch = order.slice(start, start + rows);
    const scores = await scoreBatch(model, batch.map((i) => items[i]), budget, options.signal);
    batch.forEach((i, k) => (results[i] = scores[k]));
    start += rows;
    done += rows;
    options.onProgress?.(done, items.length);
  }
  return results;
}

async function scoreBatch(model: LanguageModel, batch: readonly ScoreItem[], budget: number, signal?: AbortSignal): Promise<SequenceScore[]> {
  const { lm } = model;
  const b = batch.length;
  const sequences = batch.map((item) => [...item.promptIds, ...item.responseIds]);
  const lengths = sequences.map((s) => s.length);
  // The last token predicts nothing that is scored, so the longest sequence's last position is never fed.
  const columns = Math.max(...lengths) - 1;
  const chunk = Math.max(1, Math.floor(budget / (b * lm.vocabSize)));
  const tokenLogps = batch.map((item) => new Array<number>(item.responseIds.length));
  let cache = lm.emptyCache(b);
  for (let s = 0; s < columns; s += chunk) {
    throwIfAborted(signal);
    const c = Math.min(chunk, columns - s);
    const inputIds = new BigInt64Array(b * c);
    const positionIds = new BigInt64Array(b * c);
    const targetIds = new BigInt64Array(b * c);
    const attentionMask = new BigInt64Array(b * (s + c));
    for (let r = 0; r < b; r++) {
      const seq = sequences[r];
      attentionMask.fill(1n, r * (s + c), r * (s + c) + Math.min(s + c, lengths[r]));
      for (let j = 0; j < c; j++) {
        const col = s + j;
        positionIds[r * c + j] = BigInt(col);
        if (col < lengths[r]) inputIds[r * c + j] = BigInt(seq[col]);
        if (col + 1 < lengths[r]) targetIds[r * c + j] = BigInt(seq[col + 1]);
      }
    }
    const out = await lm.forward({ batch: b, seq: c, inputIds, attentionMask, positionIds, past: cache, targetIds, want: { targetLogprobs: true } });
    cache = out.present;
    const logprobs = out.targetLogprobs!;
    for (let r = 0; r < b; r++) {
      const promptLength = batch[r].promptIds.length;
      for (let j = 0; j < c; j++) {
        const target = s + j + 1;
        if (target >= promptLength && target < lengths[r]) tokenLogps[r][target - promptLength] = logprobs[r * c + j];
      }
    }
  }
  return tokenLogps.map((values) => ({ logp: values.reduce((sum, v) => sum + v, 0), tokenLogps: values }));
}
