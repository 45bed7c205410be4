import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { ArtifactError } from './errors';

/**
 * An error reading a file a caller named, as an ArtifactError: `not-found` when there is nothing to read, `format`
 * when the file cannot be read (EIO from /proc/self/mem, EISDIR, ...): the caller's file, not this process's fault
 * (tools/fuzz: such a read ended a request with INTERNAL).
 */
export function unreadable(filePath: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new ArtifactError('not-found', `no readable file at ${filePath}`);
  return new ArtifactError('format', `${filePath}: cannot be read (${code ?? (error as Error)?.message ?? 'unknown error'})`);
}

/** Lower-case hex sha256 of a file, streamed (files may be larger than memory). Read errors are ArtifactErrors. */
export function sha256File(filePath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(filePath)
      .on('error', (error) => reject(unreadable(filePath, error)))
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}
