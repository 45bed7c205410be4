import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ArtifactError } from './errors';

/**
 * The local path an artifact URI names: `file:///abs/path`, or a path without a scheme (resolved against the
 * working directory), as common.proto's ArtifactRef allows. Other schemes are refused here: s3:// URIs are read and
 * written through a local copy (s3/route.ts: localInput, outputTarget).
 */
export function toLocalPath(uri: string): string {
  const trimmed = uri.trim();
  if (trimmed === '') throw new ArtifactError('invalid-uri', 'the URI is empty');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(trimmed)?.[1];
  if (scheme === undefined) return path.resolve(trimmed);
  if (scheme.toLowerCase() !== 'file') {
    throw new ArtifactError('invalid-uri', `${scheme}:// URIs are not supported by the local artifact store: '${uri}'`);
  }
  try {
    return fileURLToPath(trimmed);
  } catch (error) {
    throw new ArtifactError('invalid-uri', `malformed file URI '${uri}': ${(error as Error).message}`);
  }
}

/** The file:// URI of a local path (made absolute). */
export function fileUri(localPath: string): string {
  return pathToFileURL(path.resolve(localPath)).href;
}
