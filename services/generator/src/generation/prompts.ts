import { ArtifactError, localInput, normalisePrompt, readDataRecords, verifyArtifact, type DataPrompt } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { inShard, requireTextWithinLimit, type ShardSpec } from '@alignment/service-kit';

/**
 * Where a request's prompts are: inline, or a prompt set artifact in either of TRL's prompt-only forms, JSONL or
 * Parquet (`{"prompt": "..."}`, or `{"prompt": [messages]}`: system, user and assistant turns ending with a user
 * turn; optionally `"id"`).
 */
export type PromptSource = { kind: 'inline'; prompts: string[] } | { kind: 'artifact'; uri: string; sha256: string };

export interface PromptRecord {
  /** Index in the whole prompt set (not in the shard): output records and random streams are keyed by it. */
  index: number;
  /** Text (encoded as GenerateRequest.prompt_encoding says) or a conversation (always through the chat template). */
  prompt: DataPrompt;
  /** The prompt's `id` from the prompt set, carried to the output. */
  id?: string | number;
}

export interface PromptSet {
  /** Prompts in the whole set. */
  total: number;
  /** The shard's prompts, in set order. */
  prompts: PromptRecord[];
  /** The request field a prompt's problem is reported on: `inline_prompts.prompts[3]`, or the set and its line. */
  fieldOf(index: number): string;
}

/**
 * Reads a request's prompts and keeps the shard's. An empty set, a missing or corrupt artifact, or a prompt that is
 * not a non-empty string is an InvalidArgumentError naming the field (and the line of a JSONL artifact).
 */
export async function loadPromptSet(source: PromptSource | undefined, shard: ShardSpec): Promise<PromptSet> {
  if (!source) throw new InvalidArgumentError('prompts', 'set inline_prompts or prompt_set');
  if (source.kind === 'inline') {
    if (source.prompts.length === 0) throw new InvalidArgumentError('inline_prompts.prompts', 'must not be empty');
    source.prompts.forEach((p, i) => {
      requireTextWithinLimit(`inline_prompts.prompts[${i}]`, p);
      if (p.trim() === '') throw new InvalidArgumentError(`inline_prompts.prompts[${i}]`, 'must not be empty');
    });
    return {
      total: source.prompts.length,
      prompts: source.prompts.map((prompt, index) => ({ index, prompt })).filter((p) => inShard(p.index, shard)),
      fieldOf: (index) => `inline_prompts.prompts[${index}]`,
    };
  }

  let path: string;
  try {
    path = await localInput(source.uri, 'prompt_set.uri', { sha256: source.sha256, kind: 'file' });
    await verifyArtifact(path, source.sha256);
  } catch (error) {
    if (error instanceof ArtifactError) {
      throw new InvalidArgumentError(error.kind === 'mismatch' ? 'prompt_set.sha256' : 'prompt_set.uri', error.message);
    }
    throw error;
  }
  const prompts: PromptRecord[] = [];
  const wheres: string[] = [];
  let total = 0;
  try {
    for await (const { where, value } of readDataRecords(path)) {
      const prompt = normalisePrompt(value, where).prompt;
      if (typeof prompt === 'string') requireTextWithinLimit('prompt_set', prompt, `${where}: "prompt"`);
      else prompt.forEach((m, i) => requireTextWithinLimit('prompt_set', m.content, `${where}: "prompt[${i}].content"`));
      const record = value as { id?: unknown };
      const id = typeof record.id === 'string' || typeof record.id === 'number' ? record.id : typeof record.id === 'bigint' ? Number(record.id) : undefined;
      if (inShard(total, shard)) {
        prompts.push({ index: total, prompt, ...(id !== undefined ? { id } : {}) });
      }
      wheres[total] = where;
      total += 1;
    }
  } catch (error) {
    if (error instanceof ArtifactError) throw new InvalidArgumentError('prompt_set', error.message);
    throw error;
  }
  if (total === 0) throw new InvalidArgumentError('prompt_set', `${path} holds no prompts`);
  return { total, prompts, fieldOf: (index) => `prompt_set (${wheres[index]})` };
}

