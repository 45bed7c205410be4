import * as fs from 'node:fs';
import { parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { ArtifactError } from './errors';
import { readJsonl } from './jsonl';

/**
 * One record of a data file (seed pairs, prompts, SFT data): a JSONL line or a Parquet row. `line` is the 1-based
 * line of a JSONL file or the 1-based row of a Parquet file; `where` is how a message names it (`file:line`, or
 * `file:row N`), so a user can open the file there.
 */
export interface DataRecord {
  line: number;
  where: string;
  value: unknown;
}

/** Whether a data file is read as Parquet (its name ends in .parquet) rather than as JSONL. */
export function isParquetFile(file: string): boolean {
  return /\.parquet$/i.test(file);
}

/**
 * The records of a data file in file order: Parquet when its name ends in `.parquet` (read with hyparquet; lists and
 * structs, e.g. chat messages, come back as arrays and objects), else JSONL (readJsonl, with its line cap). Every
 * problem is an ArtifactError naming the file (and the line of a JSONL file).
 */
export async function* readDataRecords(file: string): AsyncGenerator<DataRecord> {
  if (!isParquetFile(file)) {
    for await (const { line, value } of readJsonl(file)) yield { line, where: `${file}:${line}`, value };
    return;
  }
  const rows = await readParquetRows(file);
  for (let i = 0; i < rows.length; i++) yield { line: i + 1, where: `${file}:row ${i + 1}`, value: rows[i] };
}

async function readParquetRows(file: string): Promise<Array<Record<string, unknown>>> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    throw new ArtifactError('not-found', `no readable file at ${file}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new ArtifactError('format', `${file}: not a regular file`);
    const buffer: AsyncBuffer = {
      byteLength: stat.size,
      async slice(start: number, end?: number): Promise<ArrayBuffer> {
        const length = (end ?? stat.size) - start;
        const bytes = new Uint8Array(length);
        await handle.read(bytes, 0, length, start);
        return bytes.buffer;
      },
    };
    try {
      return (await parquetReadObjects({ file: buffer })) as Array<Record<string, unknown>>;
    } catch (error) {
      throw new ArtifactError('format', `${file}: not a readable Parquet file (${(error as Error).message.slice(0, 200)}); write it with pyarrow or pandas, or use JSONL`);
    }
  } finally {
    await handle.close();
  }
}
