import { ArtifactError, localInput, readJsonl, verifyArtifact, type DataMessage, type DataPrompt } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { inShard, requireTextWithinLimit, type ShardSpec } from '@alignment/service-kit';

/** One record of the generator's responses artifact (generator.proto GenerateResult.responses). */
export interface ResponsesRecord {
  /** Index of the prompt in the whole prompt set (the record's "prompt_index", else its ordinal in the file). */
  promptIndex: number;
  id?: string | number;
  /** Text, or a conversation of {"role", "content"} turns (the prompt set's conversational form). */
  prompt: DataPrompt;
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

/** A record's prompt: a string, or a conversation of {"role", "content"} string turns; within the text limit. */
function responsesPrompt(value: unknown, where: string): DataPrompt {
  if (typeof value === 'string') return requireTextWithinLimit('responses', value, `${where}: "prompt"`);
  const turns = Array.isArray(value) && value.length > 0 ? value : undefined;
  const valid = turns?.every((m) => typeof m === 'object' && m !== null && typeof (m as DataMessage).role === 'string' && typeof (m as DataMessage).content === 'string');
  if (!valid) throw new InvalidArgumentError('responses', `${where}: "prompt" must be a string or a non-empty list of {"role", "content"} messages`);
  return (turns as DataMessage[]).map((m, i) => {
    requireTextWithinLimit('responses', m.content, `${where}: "prompt[${i}].content"`);
    return { role: m.role, content: m.content };
  });
}

/**
 * The shard's records of a responses JSONL, in file order, streamed. A line that is not a record ({"prompt": string or messages,
 * "responses": [string…]}, optionally "finish_reasons": [string…] one per response) makes the artifact unusable: InvalidArgumentError on `responses` naming path:line.
 */
export async function* readResponses(path: string, shard: ShardSpec): AsyncGenerator<ResponsesRecord> {
  let ordinal = 0;
  try {
    for await (const { line, value } of readJsonl(path)) {
      const record = value as { prompt_index?: unknown; id?: unknown; prompt?: unknown; responses?: unknown; finish_reasons?: unknown } | null;
      const where = `${path}:${line}`;
      const prompt = responsesPrompt(record?.prompt, where);
      if (!Array.isArray(record!.responses) || record!.responses.some((r) => typeof r !== 'string')) {
        throw new InvalidArgumentError('responses', `${where}: "responses" must be a list of strings`);
      }
      const responses = record!.responses as string[];
      responses.forEach((r, i) => requireTextWithinLimit('responses', r, `${where}: "responses"[${i}]`));
      const reasons = record!.finish_reasons;
      if (reasons != null && (!Array.isArray(reasons) || reasons.length !== responses.length || reasons.some((r) => typeof r !== 'string'))) {
        throw new InvalidArgumentError('responses', `${where}: "finish_reasons" must be a list of strings, one per response`);
      }
      const index = Number.isInteger(record!.prompt_index) && (record!.prompt_index as number) >= 0 ? (record!.prompt_index as number) : ordinal;
      ordinal += 1;
      if (!inShard(index, shard)) continue;
      const id = typeof record!.id === 'string' || typeof record!.id === 'number' ? record!.id : undefined;
      const finished = Array.isArray(reasons) ? { finished: (reasons as string[]).map((r) => r !== 'length') } : {};
      yield { promptIndex: index, ...(id !== undefined ? { id } : {}), prompt, responses, ...finished };
    }
  } catch (error) {
    if (error instanceof ArtifactError) throw new InvalidArgumentError('responses', error.message);
    throw error;
  }
}
