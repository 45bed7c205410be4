import { Xoshiro128StarStar } from '@alignment/random';
import { LmArgumentError } from './errors';

/** Sampling parameters of one generation call (common.proto GenerationParams, with its defaults resolved). */
export interface SamplingParams {
  /** Samples per prompt, in [1, MAX_SAMPLES_PER_PROMPT]. */
  n: number;
  /** Softmax temperature, >= 0; 0 means argmax decoding. */
  temperature: number;
  /** Nucleus sampling: keep the most likely tokens until their probability reaches top_p, in (0, 1]. */
  topP: number;
  /** Keep only the top_k most likely tokens; 0 = no top-k filtering. */
  topK: number;
  /** New tokens per sample at most, >= 1 (the model's context length also ends a sample). */
  maxNewTokens: number;
  /** Extra stop strings (non-empty); the response is cut before the first one. EOS always stops. */
  stop: string[];
  /** Seeds every sample's random stream (see `sampleRng`): the same seed, model and prompts give the same responses. */
  seed: bigint;
  /** Argmax decoding; temperature, top_p and top_k are ignored. */
  greedy: boolean;
}

/** SPA §4 / docs/algorithm.md §2: 2 samples, temperature 0.7, top_p 1, at most 300 new tokens. */
export const PAPER_SAMPLING: Readonly<SamplingParams> = Object.freeze({
  n: 2,
  temperature: 0.7,
  topP: 1,
  topK: 0,
  maxNewTokens: 300,
  stop: [],
  seed: 0n,
  greedy: false,
});

/** Upper bound on n: every sample of a prompt holds a KV-cache row, so n bounds a request's memory. */
export const MAX_SAMPLES_PER_PROMPT = 64;

/** Throws LmArgumentError naming the first invalid parameter (snake_case, as in GenerationParams). */
export function validateSamplingParams(p: SamplingParams): void {
  if (!Number.isInteger(p.n) || p.n < 1 || p.n > MAX_SAMPLES_PER_PROMPT) {
    throw new LmArgumentError('n', `must be an integer in [1, ${MAX_SAMPLES_PER_PROMPT}], got ${p.n}`);
  }
  if (!p.greedy) {
    if (!Number.isFinite(p.temperature) || p.temperature < 0) throw new LmArgumentError('temperature', `must be a finite number >= 0, got ${p.temperature}`);
    if (!Number.isFinite(p.topP) || p.topP <= 0 || p.topP > 1) throw new LmArgumentError('top_p', `must be in (0, 1], got ${p.topP}`);
    if (!Number.isInteger(p.topK) || p.topK < 0) throw new LmArgumentError('top_k', `must be an integer >= 0, got ${p.topK}`);
  }
  if (!Number.isInteger(p.maxNewTokens) || p.maxNewTokens < 1) {
    throw new LmArgumentError('max_new_tokens', `must be an integer >= 1, got ${p.maxNewTokens}`);
  }
  p.stop.forEach((s, i) => {
    if (typeof s !== 'string' || s === '') throw new LmArgumentError(`stop[${i}]`, 'must be a non-empty string');
  });
  if (p.seed < 0n || p.seed >= 1n << 64n) throw new LmArgumentError('seed', `must be a uint64, got ${p.seed}`);
}

/** True when a call decodes by argmax: greedy, or temperature 0. */
export function isArgmax(p: SamplingParams): boolean {
  return p.greedy || p.temperature === 0;
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The workspace generator, seeded from a list of words; every sample owns one (see sampleRng). */
export class Rng extends Xoshiro128StarStar {
  constructor(words: readonly number[]) {
    let h = 0x2545f491;
    for (const w of words) h = mix32(h ^ mix32((w >>> 0) + 0x9e3779b9));
    const state: number[] = [];
    for (let i = 0; i < 4; i++) {
      h = mix32(h + 0x9e3779b9);
      state.push(h);
    }
    super(state);
  }
}

/**
 * The random stream of sample `sampleIndex` of the prompt at `promptIndex` (its index in the whole prompt set,
 * not in a shard or batch). Streams depend on nothing else, so how prompts are batched or sharded across
 * replicas does not change which random numbers a sample draws.
 */
export function sampleRng(seed: bigint, promptIndex: number, sampleIndex: number): Rng {
  const lo = Number(seed & 0xffffffffn);
  const hi = Number((seed >> 32n) & 0xffffffffn);
  return new Rng([lo, hi, promptIndex >>> 0, Math.floor(promptIndex / 2 ** 32), sampleIndex]);
}

/**
 * The seed of the one-prompt request that samples the prompt at `promptIndex` through an OpenAI-compatible server
 * (openai-model.ts): a 53-bit integer (exact in JSON) drawn from (seed, prompt index), so, as with sampleRng, a
 * prompt's samples do not depend on how the prompt set is batched or sharded. The generator's /v1 endpoint samples
 * prompt i of a request from sampleRng(request seed, i, j), so the two backends draw the same random numbers.
 */
export function requestSeed(seed: bigint, promptIndex: number): number {
  const rng = new Rng([Number(seed & 0xffffffffn), Number((seed >> 32n) & 0xffffffffn), promptIndex >>> 0, Math.floor(promptIndex / 2 ** 32), 0x6f70656e]);
  return (rng.nextUint32() & 0x1fffff) * 2 ** 32 + rng.nextUint32();
}

/** Index of the largest value of row [offset, offset + vocab) (first one on ties). */
export function argmaxRow(values: Float32Array, offset: number, vocab: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < vocab; i++) {
    const v = values[offset + i];
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * Draws a token from one row of probabilities (already softmax(logits / temperature), computed by onnxruntime),
 * after top-k then top-p filtering, in that order as in transformers' logits warpers.
 *
 * Top-p keeps the most likely tokens until their probability (within what top-k kept) reaches top_p, at least one.
 * Only tokens with probability >= (1 - top_p) / vocab can be in that set (the others together hold less than
 * 1 - top_p), so only those are sorted: a handful for a trained model instead of the whole vocabulary.
 */
export function sampleFromProbs(probs: Float32Array, offset: number, vocab: number, topK: number, topP: number, u: number): number {
  let total = 0;
  for (let i = 0; i < vocab; i++) total += probs[offset + i];
  const filterK = topK > 0 && topK < vocab;
  const filterP = topP < 1;
  if (!filterK && !filterP) {
    let target = u * total;
    for (let i = 0; i < vocab; i++) {
      target -= probs[offset + i];
      if (target < 0) return i;
    }
    return lastNonZero(probs, offset, vocab);
  }

  let candidates: number[];
  if (filterK) {
    candidates = topKIndices(probs, offset, vocab, topK);
  } else {
    const floor = ((1 - topP) / vocab) * total;
    candidates = [];
    for (let i = 0; i < vocab; i++) if (probs[offset + i] >= floor) candidates.push(i);
  }
  // Descending probability, lower id first on ties, so the kept set does not depend on the scan order.
  candidates.sort((a, b) => probs[offset + b] - probs[offset + a] || a - b);
  let kept = candidates.length;
  if (filterP) {
    const massK = filterK ? candidates.reduce((s, i) => s + probs[offset + i], 0) : total;
    let cumulative = 0;
    for (let j = 0; j < candidates.length; j++) {
      cumulative += probs[offset + candidates[j]];
      if (cumulative >= topP * massK) {
        kept = j + 1;
        break;
      }
    }
  }
  let mass = 0;
  for (let j = 0; j < kept; j++) mass += probs[offset + candidates[j]];
  let target = u * mass;
  for (let j = 0; j < kept; j++) {
    target -= probs[offset + candidates[j]];
    if (target < 0) return candidates[j];
  }
  return candidates[kept - 1];
}

function lastNonZero(probs: Float32Array, offset: number, vocab: number): number {
  for (let i = vocab - 1; i >= 0; i--) if (probs[offset + i] > 0) return i;
  return 0;
}

/** The k largest entries of a row (any order), by a bounded min-heap: O(vocab log k). */
function topKIndices(probs: Float32Array, offset: number, vocab: number, k: number): number[] {
  const heap: number[] = [];
  const less = (a: number, b: number) => probs[offset + a] < probs[offset + b] || (probs[offset + a] === probs[offset + b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l], heap[m])) m = l;
      if (r < heap.length && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < vocab; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!less(heap[c], heap[p])) break;
        [heap[c], heap[p]] = [heap[p], heap[c]];
        c = p;
      }
    } else if (less(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap;
}
