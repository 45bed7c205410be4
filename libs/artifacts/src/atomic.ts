import { createHash, randomBytes, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileUri } from './uri';

/** What an alignment.v1.ArtifactRef says about a written file. */
export interface ArtifactInfo {
  uri: string;
  path: string;
  /** Lower-case hex sha256 of the file's bytes. */
  sha256: string;
  sizeBytes: number;
}

// Small writes (one JSONL line each) are gathered into blocks of this size before they reach the file.
const WRITE_BLOCK_BYTES = 1 << 16;

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A file that appears under its final name only when complete: bytes go to a temporary sibling (same directory,
 * so the rename is atomic), which `commit` fsyncs and renames over the destination. A reader therefore sees the
 * old file or the whole new one, never a prefix, and a crash or `abort` leaves the destination untouched. The
 * sha256 is computed while writing, so committing does not read the file back.
 */
export class AtomicFileWriter {
  private readonly hash: Hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private size = 0;
  private closed = false;

  private constructor(
    readonly destination: string,
    private readonly tempPath: string,
    private readonly handle: fs.promises.FileHandle,
  ) {}

  /** Creates the destination's directory if needed and opens a fresh temporary file beside it. */
  static async open(destination: string): Promise<AtomicFileWriter> {
    const dest = path.resolve(destination);
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    return new AtomicFileWriter(dest, temp, await fs.promises.open(temp, 'wx'));
  }

  async write(data: string | Uint8Array): Promise<void> {
    if (this.closed) throw new Error(`write after commit/abort of ${this.destination}`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.hash.update(bytes);
    this.size += bytes.length;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= WRITE_BLOCK_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const block = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.handle.write(block);
  }

  /** Flushes, fsyncs and renames the file into place; returns its sha256 and size. */
  async commit(): Promise<ArtifactInfo> {
    if (this.closed) throw new Error(`commit after commit/abort of ${this.destination}`);
    try {
      await this.flush();
      await this.handle.sync();
    } catch (error) {
      await this.abort();
      throw error;
    }
    this.closed = true;
    await this.handle.close();
    await fs.promises.rename(this.tempPath, this.destination);
    await fsyncDirectory(path.dirname(this.destination));
    return { uri: fileUri(this.destination), path: this.destination, sha256: this.hash.digest('hex'), sizeBytes: this.size };
  }

  /** Discards what was written; the destination is untouched. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
    await fs.promises.rm(this.tempPath, { force: true });
  }
}

/** Writes a whole file atomically (see AtomicFileWriter). */
export async function writeFileAtomic(destination: string, data: string | Uint8Array): Promise<ArtifactInfo> {
  const writer = await AtomicFileWriter.open(destination);
  try {
    await writer.write(data);
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return writer.commit();
}
