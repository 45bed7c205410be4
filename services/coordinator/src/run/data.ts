import { ArtifactError, JsonlWriter, readJsonl, type ArtifactInfo } from '@alignment/artifacts';

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

/** Every non-blank line of a JSONL file as an object (an array or scalar line is a format error). */
export async function readObjects(file: string): Promise<Array<Line<JsonObject>>> {
  const lines: Array<Line<JsonObject>> = [];
  try {
    for await (const record of readJsonl(file)) {
      if (typeof record.value !== 'object' || record.value === null || Array.isArray(record.value)) {
        throw new DataFormatError(`${file}:${record.line}: must be a JSON object`);
      }
      lines.push({ line: record.line, value: record.value as JsonObject });
    }
  } catch (error) {
    if (error instanceof ArtifactError) throw new DataFormatError(error.message);
    throw error;
  }
  return lines;
}

function requireString(file: string, line: number, value: JsonObject, key: string): string {
  const field = value[key];
  if (typeof field !== 'string' || field === '') throw new DataFormatError(`${file}:${line}: "${key}" must be a non-empty string`);
  return field;
}

export interface PromptRecord {
  line: number;
  prompt: string;
  value: JsonObject;
}

/** A prompts JSONL (`{"prompt": "..."}` per line, optionally "id"); at least one prompt. */
export async function readPrompts(file: string): Promise<PromptRecord[]> {
  const records = (await readObjects(file)).map(({ line, value }) => ({ line, value, prompt: requireString(file, line, value, 'prompt') }));
  if (records.length === 0) throw new DataFormatError(`${file}: has no prompts`);
  return records;
}

export interface PairRecord {
  line: number;
  prompt: string;
  chosen: string;
  rejected: string;
  value: JsonObject;
}

/**
 * A preference-pairs JSONL (`{"prompt", "chosen", "rejected"}` per line, as TRL); at least one pair, none with
 * identical responses (it carries no preference, and the trainer refuses it).
 */
export async function readPairs(file: string): Promise<PairRecord[]> {
  const records = (await readObjects(file)).map(({ line, value }) => {
    const record = {
      line,
      value,
      prompt: requireString(file, line, value, 'prompt'),
      chosen: requireString(file, line, value, 'chosen'),
      rejected: requireString(file, line, value, 'rejected'),
    };
    if (record.chosen === record.rejected) throw new DataFormatError(`${file}:${line}: "chosen" and "rejected" are identical (the pair carries no preference)`);
    return record;
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
