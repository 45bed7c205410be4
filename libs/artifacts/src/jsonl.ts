import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { AtomicFileWriter, type ArtifactInfo } from './atomic';
import { ArtifactError } from './errors';

/** One parsed JSONL line and its 1-based line number in the file (blank lines are skipped, not renumbered). */
export interface JsonlRecord {
  line: number;
  value: unknown;
}

/**
 * Reads a JSONL file line by line (files may be larger than memory). A missing file is `not-found`; a line that is
 * not JSON is `format`, with `path:line` in the message so a user can open the file there.
 */
export async function* readJsonl(filePath: string): AsyncGenerator<JsonlRecord> {
  let stream: fs.ReadStream;
  try {
    await fs.promises.access(filePath, fs.constants.R_OK);
    stream = fs.createReadStream(filePath, { encoding: 'utf8' });
  } catch {
    throw new ArtifactError('not-found', `no readable file at ${filePath}`);
  }
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (const raw of lines) {
      lineNumber += 1;
      if (raw.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (error) {
        throw new ArtifactError('format', `${filePath}:${lineNumber}: not valid JSON (${(error as Error).message})`);
      }
      yield { line: lineNumber, value };
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** A JSONL file written atomically: one JSON object per `append`, visible under its name only after `commit`. */
export class JsonlWriter {
  private constructor(private readonly writer: AtomicFileWriter) {}

  static async open(destination: string): Promise<JsonlWriter> {
    return new JsonlWriter(await AtomicFileWriter.open(destination));
  }

  get destination(): string {
    return this.writer.destination;
  }

  append(value: unknown): Promise<void> {
    return this.writer.write(JSON.stringify(value) + '\n');
  }

  commit(): Promise<ArtifactInfo> {
    return this.writer.commit();
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}
