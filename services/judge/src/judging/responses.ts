import { ArtifactError, localInput, readJsonl, verifyArtifact } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { inShard, requireTextWithinLimit, type ShardSpec } from '@alignment/service-kit';

/** One record of the generator's responses artifact (generator.proto GenerateResult.responses). */
export interface ResponsesRecord {
  /** Index of the prompt in the whole prompt set (the record's "prompt_index", else its ordinal in the file). */
  promptIndex: number;
  id?: string | number;
  prompt: string;
  responses: string[];
  /**
   * Whether each response ended by itself: false where its "finish_reasons" entry is "length" (cut at
   * max_new_tokens). Undefined when the record has no finish reasons (every response is taken as finished).
   */
  finished?: boolean[];
}

/** Resolves and verifies the responses artifact of a request (field `responses`). */
export async function responsesPath(ref: { uri: string; sha256: string } | undefined): Promise<string> {
  if (!ref || ref.uri.trim() === '') throw new InvalidArgumentError('responses.uri', 'is required (the generator’s responses JSONL)');
  try {
    const path = await localInput(ref.uri, 'responses.uri', { sha256: ref.sha256, kind: 'file' });
    await verifyArtifact(path, ref.sha256);
    return path;
  } catch (error) {
    if (error instanceof ArtifactError) throw new InvalidArgumentError(error.kind === 'mismatch' ? 'responses.sha256' : 'responses.uri', error.message);
    throw error;
  }
}

/**
 * The shard's records of a responses JSONL, in file order, streamed. A line that is not a record ({"prompt": string,
 * "responses": [string…]}, optionally "finish_reasons": [string…] one per response) makes the artifact unusable: InvalidArgumentError on `responses` naming path:line.
 */
export async function* readResponses(path: string, shard: ShardSpec): AsyncGenerator<ResponsesRecord> {
  let ordinal = 0;
  try {
    for await (const { line, value } of readJsonl(path)) {
      const record = value as { prompt_index?: unknown; id?: unknown; prompt?: unknown; responses?: unknown; finish_reasons?: unknown } | null;
      const where = `${path}:${line}`;
      if (typeof record?.prompt !== 'string') throw new InvalidArgumentError('responses', `${where}: "prompt" must be a string`);
      if (!Array.isArray(record.responses) || record.responses.some((r) => typeof r !== 'string')) {
        throw new InvalidArgumentError('responses', `${where}: "responses" must be a list of strings`);
      }
      requireTextWithinLimit('responses', record.prompt, `${where}: "prompt"`);
      (record.responses as string[]).forEach((r, i) => requireTextWithinLimit('responses', r, `${where}: "responses"[${i}]`));
      const reasons = record.finish_reasons;
      if (reasons != null && (!Array.isArray(reasons) || reasons.length !== record.responses.length || reasons.some((r) => typeof r !== 'string'))) {
        throw new InvalidArgumentError('responses', `${where}: "finish_reasons" must be a list of strings, one per response`);
      }
      const index = Number.isInteger(record.prompt_index) && (record.prompt_index as number) >= 0 ? (record.prompt_index as number) : ordinal;
      ordinal += 1;
      if (!inShard(index, shard)) continue;
      const id = typeof record.id === 'string' || typeof record.id === 'number' ? record.id : undefined;
      const finished = Array.isArray(reasons) ? { finished: (reasons as string[]).map((r) => r !== 'length') } : {};
      yield { promptIndex: index, ...(id !== undefined ? { id } : {}), prompt: record.prompt, responses: record.responses as string[], ...finished };
    }
  } catch (error) {
    if (error instanceof ArtifactError) throw new InvalidArgumentError('responses', error.message);
    throw error;
  }
}
