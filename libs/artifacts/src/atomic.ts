import { createHash, randomBytes, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArtifactError } from './errors';
import { sha256File } from './hash';
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

/** Linux's limits, in bytes: a whole path (PATH_MAX, with its NUL) and one name in it (NAME_MAX). */
const PATH_MAX = 4096;
const NAME_MAX = 255;
/** What the temporary sibling's name adds to the destination's: `.` + `.tmp-<pid>-<8 hex digits>`. */
const TEMP_NAME_EXTRA = 32;

/**
 * Checks, before any work, that `destination` can be written as an AtomicFileWriter writes it, and returns it
 * absolute: no NUL character, a path and names within PATH_MAX and NAME_MAX (room left for the temporary sibling),
 * and nothing there but a regular file (a directory cannot be renamed over, and a device or FIFO a process running
 * as root would replace). An `invalid-uri` ArtifactError says why not (tools/fuzz: a directory, a NUL or an overlong
 * name as output_uri ended the generator's and the judge's requests with INTERNAL, the directory only at the rename,
 * after all the work).
 */
export async function checkDestination(destination: string): Promise<string> {
  if (destination.includes('\0')) throw new ArtifactError('invalid-uri', 'the path contains a NUL character');
  const dest = path.resolve(destination);
  if (Buffer.byteLength(dest) >= PATH_MAX - TEMP_NAME_EXTRA) {
    throw new ArtifactError('invalid-uri', `the path is ${Buffer.byteLength(dest)} bytes long; at most ${PATH_MAX - TEMP_NAME_EXTRA - 1} are written`);
  }
  const names = dest.split(path.sep);
  names.forEach((name, i) => {
    const most = i === names.length - 1 ? NAME_MAX - TEMP_NAME_EXTRA : NAME_MAX;
    if (Buffer.byteLength(name) > most) throw new ArtifactError('invalid-uri', `a name in the path is ${Buffer.byteLength(name)} bytes long; at most ${most} are written`);
  });
  const stat = await statUnlessMissing(dest);
  if (stat?.isDirectory()) throw new ArtifactError('invalid-uri', `${dest} is a directory; name the file to write`);
  if (stat && !stat.isFile()) throw new ArtifactError('invalid-uri', `${dest} is not a regular file (a device, FIFO or socket is not replaced)`);
  // The nearest ancestor that exists must be a directory (it is where the missing ones are made).
  for (let dir = path.dirname(dest); ; dir = path.dirname(dir)) {
    const ancestor = await statUnlessMissing(dir);
    if (ancestor) {
      if (!ancestor.isDirectory()) throw new ArtifactError('invalid-uri', `${dir} is not a directory`);
      break;
    }
    if (path.dirname(dir) === dir) break;
  }
  return dest;
}

/** fs.stat; undefined when nothing is there (ENOTDIR: an ancestor is a file), an invalid-uri for ELOOP, EACCES, ... */
async function statUnlessMissing(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fs.promises.stat(p);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ArtifactError('invalid-uri', `cannot use ${p}: ${code ?? (error as Error).message}`);
  }
}

export interface AtomicWriteOptions {
  /**
   * What `commit` does when a file is at the destination by then. 'replace' (the default): renames over it, for a
   * writer that owns the destination (the coordinator's own stage outputs). 'keep': never replaces it (issue 12: a
   * service does not overwrite an artifact that is not its own staging file): the commit links the finished file into
   * place only where nothing is, succeeds without writing when the file there has exactly these bytes (an
   * idempotent retry of the same work: a coordinator's call retried after the first one wrote its output), and fails
   * otherwise with an 'exists' ArtifactError, the destination untouched.
   */
  existing?: 'replace' | 'keep';
}

/** Failures to create a client-named file that say the path is unusable, not that this process is unwell. */
const UNWRITABLE_PATH_CODES = new Set(['ENOENT', 'ENOTDIR', 'EEXIST', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EPERM', 'EROFS']);

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
    private readonly existing: 'replace' | 'keep',
  ) {}

  /**
   * Creates the destination's directory if needed and opens a fresh temporary file beside it. A destination that
   * cannot be written (checkDestination, or a failure that names the path: ENOTDIR, EACCES, ...) is an `invalid-uri`
   * ArtifactError.
   */
  static async open(destination: string, options: AtomicWriteOptions = {}): Promise<AtomicFileWriter> {
    const dest = await checkDestination(destination);
    try {
      await fs.promises.mkdir(path.dirname(dest), { recursive: true });
      const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      return new AtomicFileWriter(dest, temp, await fs.promises.open(temp, 'wx'), options.existing ?? 'replace');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code && UNWRITABLE_PATH_CODES.has(code)) throw new ArtifactError('invalid-uri', `cannot write ${dest}: ${code}`);
      throw error;
    }
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
    const sha256 = this.hash.digest('hex');
    if (this.existing === 'keep') await this.linkUnlessPresent(sha256);
    else await fs.promises.rename(this.tempPath, this.destination);
    await fsyncDirectory(path.dirname(this.destination));
    return { uri: fileUri(this.destination), path: this.destination, sha256, sizeBytes: this.size };
  }

  /** existing 'keep': link(2) fails rather than replace what is there; the same bytes there are this write done already. */
  private async linkUnlessPresent(sha256: string): Promise<void> {
    try {
      await fs.promises.link(this.tempPath, this.destination);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        await fs.promises.rm(this.tempPath, { force: true });
        throw error;
      }
      const there = await sha256File(this.destination).catch(() => undefined);
      await fs.promises.rm(this.tempPath, { force: true });
      if (there !== sha256) {
        throw new ArtifactError('exists', `${this.destination} already exists${there ? ` with other content (sha256 ${there}, this write's ${sha256})` : ' and is not a readable file'}; it is not replaced`);
      }
      return;
    }
    await fs.promises.rm(this.tempPath, { force: true });
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
export async function writeFileAtomic(destination: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<ArtifactInfo> {
  const writer = await AtomicFileWriter.open(destination, options);
  try {
    await writer.write(data);
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return writer.commit();
}
