import * as path from 'node:path';
import { fileUri, samePrompt, sha256File, toLocalPath, type DataPrompt } from '@alignment/artifacts';
import { Pairing, type ArtifactRef, type GenerateRequest, type JudgeCounts, type JudgePairsRequest, type Progress, type Shard } from '@alignment/contracts';
import { readObjects, writeJsonl, type JsonObject } from './data';
import {
  StageAbortedError,
  StageFailedError,
  abortReason,
  type CallContext,
  type GenerateExecutor,
  type JudgeExecutor,
} from './executors';

// Fan-out of a generator or judge call over shards (Shard{index, count}: items i with i % count == index), and the
// deterministic merge of the shard outputs by item index into one artifact. The merged file is the same whatever
// the number of replicas and whatever order the shards finish in.

/** Runs one call per shard concurrently; the first failure aborts the others. Progress is summed over shards. */
async function runShards<T>(
  count: number,
  ctx: CallContext,
  unit: string,
  call: (index: number, shard: Shard | undefined, shardCtx: CallContext) => Promise<T>,
): Promise<T[]> {
  const inner = new AbortController();
  const forward = () => inner.abort(ctx.signal.reason);
  if (ctx.signal.aborted) forward();
  else ctx.signal.addEventListener('abort', forward, { once: true });
  const latest: Progress[] = Array.from({ length: count }, () => ({ done: 0, total: 0, unit, tokensPerSecond: 0, etaSeconds: 0 }));
  const report = () => {
    const sum = latest.reduce(
      (acc, p) => ({
        done: acc.done + p.done,
        total: acc.total + p.total,
        unit: p.unit || acc.unit,
        tokensPerSecond: acc.tokensPerSecond + p.tokensPerSecond,
        etaSeconds: Math.max(acc.etaSeconds, p.etaSeconds),
      }),
      { done: 0, total: 0, unit, tokensPerSecond: 0, etaSeconds: 0 },
    );
    ctx.onProgress(sum);
  };
  let firstError: unknown;
  try {
    const settled = await Promise.allSettled(
      Array.from({ length: count }, (_, index) => {
        const shard = count > 1 ? { index, count } : undefined;
        const shardCtx: CallContext = {
          signal: inner.signal,
          label: count > 1 ? `${ctx.label} shard ${index}/${count}` : ctx.label,
          onProgress: (progress) => {
            latest[index] = progress;
            report();
          },
        };
        return call(index, shard, shardCtx).catch((error) => {
          firstError ??= error;
          if (!inner.signal.aborted) inner.abort('sibling-failed');
          throw error;
        });
      }),
    );
    if (ctx.signal.aborted) throw new StageAbortedError(abortReason(ctx.signal));
    if (firstError !== undefined) throw firstError;
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  } finally {
    ctx.signal.removeEventListener('abort', forward);
  }
}

/** Reads a file a service wrote, checking the sha256 it reported (when it reported one). */
async function readServiceOutput(ref: ArtifactRef | undefined, fallbackPath: string, what: string): Promise<JsonObject[]> {
  const file = ref?.uri ? toLocalPath(ref.uri) : fallbackPath;
  if (ref?.sha256) {
    const actual = await sha256File(file).catch(() => undefined);
    if (actual !== ref.sha256) {
      throw new StageFailedError(`${what}: ${file} has sha256 ${actual ?? '(missing)'}, but the service reported ${ref.sha256}`);
    }
  }
  try {
    return (await readObjects(file)).map((l) => l.value);
  } catch (error) {
    throw new StageFailedError(`${what}: ${(error as Error).message}`);
  }
}

/** The global item indices shard `index` of `count` handles, in order. */
export function shardIndices(numItems: number, index: number, count: number): number[] {
  const indices: number[] = [];
  for (let i = index; i < numItems; i += count) indices.push(i);
  return indices;
}

function shardFile(workDir: string, name: string, index: number, count: number): string {
  return path.join(workDir, `${name}.shard-${index}-of-${count}.jsonl`);
}

// ----------------------------------------------------------------------------------------------------- generate

export interface ShardedGenerate {
  executor: GenerateExecutor;
  /** The request without shard and output_uri; its prompts are `prompts` (read already, for checking). */
  request: Omit<GenerateRequest, 'shard' | 'outputUri'>;
  prompts: readonly DataPrompt[];
  shards: number;
  /** Per-shard files go to `<workDir>/<name>.shard-k-of-n.jsonl`, the merged file to `destination`. */
  workDir: string;
  name: string;
  destination: string;
}

export interface GenerateTotals {
  responses: ArtifactRef;
  /** The merged lines, index i = prompt i. */
  lines: JsonObject[];
  numResponses: number;
  numGeneratedTokens: number;
}

/**
 * Generates `request.params.n` responses for every prompt over `shards` calls and merges them by prompt index:
 * shard k's j-th line is prompt k + j·count (the generator writes one line per prompt, in order). Each line's
 * prompt must be the prompt at that index and carry n responses, so a lost, duplicated or misplaced prompt fails
 * the stage instead of reaching the judge.
 */
export async function generateSharded(job: ShardedGenerate, ctx: CallContext): Promise<GenerateTotals> {
  const count = Math.max(1, job.shards);
  const n = job.request.params?.n ?? 0;
  const results = await runShards(count, ctx, 'prompts', async (index, shard, shardCtx) => {
    const file = shardFile(job.workDir, job.name, index, count);
    const result = await job.executor.generate({ ...job.request, shard, outputUri: fileUri(file) }, shardCtx);
    return { result, lines: await readServiceOutput(result.responses, file, `${ctx.label}: generator output of shard ${index}/${count}`) };
  });
  const merged: JsonObject[] = new Array(job.prompts.length);
  results.forEach(({ lines }, k) => {
    const indices = shardIndices(job.prompts.length, k, count);
    const where = `${ctx.label}: generator shard ${k}/${count}`;
    if (lines.length !== indices.length) {
      throw new StageFailedError(`${where} returned ${lines.length} lines for ${indices.length} prompts`);
    }
    lines.forEach((line, j) => {
      const i = indices[j];
      if (!samePrompt(line.prompt, job.prompts[i])) throw new StageFailedError(`${where}: line ${j + 1} is not prompt ${i}`);
      const claimed = line.prompt_index;
      if (claimed !== undefined && claimed !== i && claimed !== j) {
        throw new StageFailedError(`${where}: line ${j + 1} says prompt_index ${String(claimed)}, expected ${i}`);
      }
      const responses = line.responses;
      if (!Array.isArray(responses) || responses.some((r) => typeof r !== 'string') || (n > 0 && responses.length !== n)) {
        throw new StageFailedError(`${where}: line ${j + 1} must have ${n || 'its'} responses as strings`);
      }
      const { prompt_index: _ignored, ...rest } = line;
      merged[i] = { prompt_index: i, ...rest };
    });
  });
  const info = await writeJsonl(job.destination, merged);
  return {
    responses: { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes },
    lines: merged,
    numResponses: results.reduce((s, r) => s + r.result.numResponses, 0),
    numGeneratedTokens: results.reduce((s, r) => s + r.result.numGeneratedTokens, 0),
  };
}

// -------------------------------------------------------------------------------------------------------- judge

export interface ShardedJudge {
  executor: JudgeExecutor;
  /** The request without shard and output_uri; `request.responses` is the file whose lines are `items`. */
  request: Omit<JudgePairsRequest, 'shard' | 'outputUri'>;
  /** The responses file's lines (prompt and responses; request.pairing says which two are judged). */
  items: readonly JsonObject[];
  shards: number;
  workDir: string;
  name: string;
  destination: string;
}

export interface JudgeTotals {
  pairs: ArtifactRef;
  /** Merged pairs in item order, each with its item's `prompt_index` (the item index in the responses file). */
  lines: JsonObject[];
  counts: JudgeCounts;
  /** Pairs with a response cut at max_new_tokens, summed over the shards (judge.proto UnfinishedCounts). */
  unfinished: { dropped: number; inPairs: number };
}

/** A prompt as a map key: its text, or a conversation (a list of {"role", "content"}) as JSON. */
const promptString = (prompt: unknown): string => (typeof prompt === 'string' ? prompt : JSON.stringify(prompt));

/**
 * Whether `pair` can be `item`'s: the same prompt, and chosen and rejected two different responses of the item (of
 * its first two unless `anyTwo`, PAIRING_BEST_WORST).
 */
function pairOf(item: JsonObject, pair: JsonObject, anyTwo: boolean): boolean {
  const all = Array.isArray(item.responses) ? (item.responses as unknown[]).map(String) : [];
  const responses = anyTwo ? all : all.slice(0, 2);
  const [chosen, rejected] = [String(pair.chosen), String(pair.rejected)];
  return promptString(item.prompt) === promptString(pair.prompt) && chosen !== rejected && responses.includes(chosen) && responses.includes(rejected);
}

/**
 * Labels the items over `shards` calls and merges the pairs by item index. A judge drops pairs (identical
 * responses, ties, invalid ones), so a shard's k-th pair is not its k-th item; each pair is matched to its item by
 * content: the same prompt, chosen and rejected two of its responses (the first two, or any two with
 * PAIRING_BEST_WORST), the first unmatched such item in index order. Items with the same prompt and responses are
 * interchangeable, so the merged file does not depend on which one a pair is given to. A `prompt_index` the judge
 * writes is used when it names such an item of the shard.
 */
export async function judgeSharded(job: ShardedJudge, ctx: CallContext): Promise<JudgeTotals> {
  const count = Math.max(1, job.shards);
  const results = await runShards(count, ctx, 'pairs', async (index, shard, shardCtx) => {
    const file = shardFile(job.workDir, job.name, index, count);
    const result = await job.executor.judgePairs({ ...job.request, shard, outputUri: fileUri(file) }, shardCtx);
    return { result, lines: await readServiceOutput(result.pairs, file, `${ctx.label}: judge output of shard ${index}/${count}`) };
  });
  const anyTwo = job.request.pairing === Pairing.PAIRING_BEST_WORST;
  const byIndex = new Map<number, JsonObject>();
  results.forEach(({ lines }, k) => {
    const where = `${ctx.label}: judge shard ${k}/${count}`;
    const open = new Map<string, number[]>();
    for (const i of shardIndices(job.items.length, k, count)) {
      const key = promptString(job.items[i].prompt);
      const list = open.get(key);
      if (list) list.push(i);
      else open.set(key, [i]);
    }
    lines.forEach((pair, j) => {
      const list = open.get(promptString(pair.prompt)) ?? [];
      const candidates = list.filter((i) => pairOf(job.items[i], pair, anyTwo));
      if (candidates.length === 0) {
        throw new StageFailedError(`${where}: pair ${j + 1} matches no unjudged item of the shard (prompt ${JSON.stringify(pair.prompt)})`);
      }
      const i = typeof pair.prompt_index === 'number' && candidates.includes(pair.prompt_index) ? pair.prompt_index : candidates[0];
      list.splice(list.indexOf(i), 1);
      const { prompt_index: _ignored, ...rest } = pair;
      byIndex.set(i, { prompt_index: i, ...rest });
    });
  });
  const lines = [...byIndex.keys()].sort((a, b) => a - b).map((i) => byIndex.get(i)!);
  const counts: JudgeCounts = { numPrompts: 0, numPairs: 0, droppedIdentical: 0, droppedTies: 0, droppedInvalid: 0 };
  const unfinished = { dropped: 0, inPairs: 0 };
  for (const { result } of results) {
    const c = result.counts;
    counts.numPrompts += c?.numPrompts ?? 0;
    counts.numPairs += c?.numPairs ?? 0;
    counts.droppedIdentical += c?.droppedIdentical ?? 0;
    counts.droppedTies += c?.droppedTies ?? 0;
    counts.droppedInvalid += c?.droppedInvalid ?? 0;
    unfinished.dropped += result.unfinished?.dropped ?? 0;
    unfinished.inPairs += result.unfinished?.inPairs ?? 0;
  }
  if (counts.numPairs !== lines.length) {
    throw new StageFailedError(`${ctx.label}: the judge reported ${counts.numPairs} pairs but wrote ${lines.length}`);
  }
  const info = await writeJsonl(job.destination, lines);
  return { pairs: { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes }, lines, counts, unfinished };
}
