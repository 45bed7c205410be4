import * as fs from 'node:fs';
import type { ArtifactInfo } from '../atomic';
import { checkDestination } from '../atomic';
import { confinePath } from '../confine';
import { toLocalPath } from '../uri';
import { confineS3Uri } from './confine';
import { checkBucket } from './objects';
import { fetchArtifact, publishArtifact } from './resolve';
import { isS3Uri } from './uri';

// Where a service's request names an artifact by URI, these route it: file:// and plain paths to the local file
// system (confined by ARTIFACT_ROOTS), s3:// to the bucket (confined by S3_ARTIFACT_ROOTS) through a local copy.

/**
 * The local path of an input: a local one confined for reading, an s3:// one downloaded into the cache and checked
 * against `sha256` (fetchArtifact). Problems are ArtifactErrors and PermissionDeniedErrors on `field`.
 */
export async function localInput(uri: string, field: string, options: { sha256?: string; kind: 'file' | 'dir' }): Promise<string> {
  if (isS3Uri(uri)) return fetchArtifact(uri, field, options);
  return confinePath(toLocalPath(uri), field, 'read');
}

/** Where an output is written locally, and the s3:// URI it is published to afterwards, if any. */
export interface OutputTarget {
  local: string;
  remote?: string;
}

/**
 * The target of an output named by `uri`, checked before any work: a local path confined for writing and checked by
 * checkDestination; an s3:// URI confined for writing, its bucket checked (checkBucket), written first to `staging()`
 * (a path in the service's store).
 */
export async function outputTarget(uri: string, field: string, staging: () => string): Promise<OutputTarget> {
  if (isS3Uri(uri)) {
    await checkBucket(confineS3Uri(uri, field, 'write'));
    return { local: staging(), remote: uri.trim() };
  }
  return { local: await checkDestination(confinePath(toLocalPath(uri), field, 'write')) };
}

/** The written output's ArtifactInfo: for an s3:// target, published there (its s3:// URI), the staged copy removed. */
export async function finishOutput(target: OutputTarget, written: ArtifactInfo, field: string): Promise<ArtifactInfo> {
  if (target.remote === undefined) return written;
  const published = await publishArtifact(written.path, target.remote, field);
  await fs.promises.rm(written.path, { recursive: true, force: true });
  return published;
}
