import * as fs from 'node:fs';
import { AtomicFileWriter, type ArtifactInfo, type AtomicWriteOptions } from './atomic';
import { ArtifactError } from './errors';
import { unreadable } from './hash';

/** One parsed JSONL line and its 1-based line number in the file (blank lines are skipped, not renumbered). */
export interface JsonlRecord {
  line: number;
  value: unknown;
}

/** The longest JSONL line read by default: 16 MiB (issue 12: an uncapped line crashed the services). */
export const DEFAULT_MAX_JSONL_LINE_BYTES = 16 * 1024 * 1024;

/** The line cap in effect: $JSONL_MAX_LINE_BYTES when it is a positive integer, else the default. */
export function maxJsonlLineBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.JSONL_MAX_LINE_BYTES;
  const value = raw !== undefined && /^[0-9]{1,12}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  return value > 0 ? value : DEFAULT_MAX_JSONL_LINE_BYTES;
}

const READ_CHUNK_BYTES = 1 << 20;

/**
 * Reads a JSONL file line by line (files may be larger than memory). A missing file is `not-found`. A path that is
 * not a regular file (a directory, /dev/zero, a FIFO), a line longer than `maxLineBytes`, or a line that is not
 * JSON is `format`, with `path:line` in the message so a user can open the file there. No message quotes the file's
 * content: a caller may have named a file that is not theirs to read.
 */
export async function* readJsonl(filePath: string, maxLineBytes: number = maxJsonlLineBytes()): AsyncGenerator<JsonlRecord> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(filePath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    throw new ArtifactError('not-found', `no readable file at ${filePath}`);
  }
  try {
    if (!(await handle.stat()).isFile()) throw new ArtifactError('format', `${filePath}: not a regular file`);
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let partial: Buffer[] = [];
    let partialBytes = 0;
    let lineNumber = 0;
    const finish = (tail: Buffer): JsonlRecord | undefined => {
      lineNumber += 1;
      const bytes = partialBytes === 0 ? tail : Buffer.concat([...partial, tail]);
      partial = [];
      partialBytes = 0;
      return parseLine(bytes, filePath, lineNumber);
    };
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, READ_CHUNK_BYTES, null).catch((error: unknown) => {
        throw unreadable(filePath, error);
      });
      if (bytesRead === 0) break;
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf(0x0a, start);
        const end = newline === -1 || newline >= bytesRead ? bytesRead : newline;
        if (partialBytes + (end - start) > maxLineBytes) {
          throw new ArtifactError('format', `${filePath}:${lineNumber + 1}: line longer than ${maxLineBytes} bytes (JSONL_MAX_LINE_BYTES)`);
        }
        if (end === bytesRead) {
          // Copied: the chunk buffer is reused by the next read.
          partial.push(Buffer.from(chunk.subarray(start, bytesRead)));
          partialBytes += bytesRead - start;
          break;
        }
        const record = finish(chunk.subarray(start, end));
        if (record) yield record;
        start = end + 1;
      }
    }
    if (partialBytes > 0) {
      const record = finish(Buffer.alloc(0));
      if (record) yield record;
    }
  } finally {
    await handle.close();
  }
}

/** One line's record; undefined for a blank line (counted, not yielded). */
function parseLine(bytes: Buffer, filePath: string, lineNumber: number): JsonlRecord | undefined {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return { line: lineNumber, value: JSON.parse(text) };
  } catch (error) {
    // V8 quotes the text around the error; only its position is kept.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new ArtifactError('format', `${filePath}:${lineNumber}: not valid JSON${position === undefined ? '' : ` (at character ${Number(position) + 1})`}`);
  }
}

/** A JSONL file written atomically: one JSON object per `append`, visible under its name only after `commit`. */
export class JsonlWriter {
  private constructor(private readonly writer: AtomicFileWriter) {}

  static async open(destination: string, options: AtomicWriteOptions = {}): Promise<JsonlWriter> {
    return new JsonlWriter(await AtomicFileWriter.open(destination, options));
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
