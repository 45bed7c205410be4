import {
  ArtifactError,
  explicitPairRecord,
  JsonlWriter,
  normalisePair,
  normalisePrompt,
  readDataRecords,
  type ArtifactInfo,
  type DataPrompt,
} from '@alignment/artifacts';

// The JSONL records the coordinator reads and writes (formats from generator.proto / judge.proto / trainer.proto).

/** Thrown when a data file is missing or not in the expected format; the message names `file:line`. */
export class DataFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataFormatError';
  }
}

export type JsonObject = Record<string, unknown>;

export interface Line<T> {
  /** 1-based line number in the file. */
  line: number;
  value: T;
}

/** Every record of a data file (JSONL lines, or Parquet rows for a .parquet file) as an object. */
export async function readObjects(file: string): Promise<Array<Line<JsonObject>>> {
  return formatErrors(async () => {
    const lines: Array<Line<JsonObject>> = [];
    for await (const record of readDataRecords(file)) {
      if (typeof record.value !== 'object' || record.value === null || Array.isArray(record.value)) {
        throw new DataFormatError(`${record.where}: must be a JSON object`);
      }
      lines.push({ line: record.line, value: record.value as JsonObject });
    }
    return lines;
  });
}

async function formatErrors<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof ArtifactError) throw new DataFormatError(error.message);
    throw error;
  }
}

/** The record's other fields as JSON can write them (a Parquet int64 column reads as a bigint). */
function jsonSafe(value: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, field] of Object.entries(value)) {
    if (typeof field === 'bigint') out[key] = Number.isSafeInteger(Number(field)) ? Number(field) : String(field);
    else if (field !== undefined) out[key] = field;
  }
  return out;
}

export interface PromptRecord {
  line: number;
  /** `file:line` (or `file:row N`), for errors. */
  where: string;
  /** Text (standard form) or a conversation ending with a user turn (conversational form). */
  prompt: DataPrompt;
  /** The record as the generator reads it: its fields, with "prompt" in its normalised form. */
  value: JsonObject;
}

/**
 * A prompt set in either of TRL's prompt-only forms (`{"prompt": text}` or `{"prompt": [messages]}`, optionally
 * "id"), JSONL or Parquet; at least one prompt. A conversation may have several system, user and assistant turns,
 * and ends with a user turn.
 */
export async function readPrompts(file: string): Promise<PromptRecord[]> {
  const records = await formatErrors(async () => {
    const out: PromptRecord[] = [];
    for await (const { line, where, value } of readDataRecords(file)) {
      const prompt = normalisePrompt(value, where).prompt;
      out.push({ line, where, prompt, value: { ...jsonSafe(value as JsonObject), prompt } });
    }
    return out;
  });
  if (records.length === 0) throw new DataFormatError(`${file}: has no prompts`);
  return records;
}

export interface PairRecord {
  line: number;
  /** `file:line` (or `file:row N`), for errors. */
  where: string;
  prompt: DataPrompt;
  chosen: string;
  rejected: string;
  /** The pair in TRL's explicit-prompt form (the record's other fields kept), as label noise and replay write it. */
  value: JsonObject;
}

/**
 * Preference pairs in any of TRL's preference forms (explicit or implicit prompt, standard or conversational; JSONL
 * or Parquet: @alignment/artifacts data-forms.ts); at least one pair, none with identical responses (it carries no
 * preference, and the trainer refuses it).
 */
export async function readPairs(file: string): Promise<PairRecord[]> {
  const records = await formatErrors(async () => {
    const out: PairRecord[] = [];
    for await (const { line, where, value } of readDataRecords(file)) {
      const pair = normalisePair(value, where);
      out.push({ line, where, prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected, value: { ...jsonSafe(value as JsonObject), ...explicitPairRecord(pair) } });
    }
    return out;
  });
  if (records.length === 0) throw new DataFormatError(`${file}: has no pairs`);
  return records;
}

/** Writes objects as JSONL atomically (temp file + rename); returns the file's sha256 and size. */
export async function writeJsonl(destination: string, values: Iterable<unknown>): Promise<ArtifactInfo> {
  const writer = await JsonlWriter.open(destination);
  try {
    for (const value of values) await writer.append(value);
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return writer.commit();
}
