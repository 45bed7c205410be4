import { PermissionDeniedError } from '@alignment/errors';
import type { S3Location } from './uri';
import { parseS3Uri } from './uri';

/**
 * Where a service may read and write s3:// artifacts: the S3 counterpart of ARTIFACT_ROOTS / READ_ONLY_ROOTS
 * (../confine.ts). S3_ARTIFACT_ROOTS (read and write) and S3_READ_ONLY_ROOTS (read) are lists of `s3://bucket` or
 * `s3://bucket/prefix`, separated by commas or white space; a key is under a root when it equals the prefix or
 * continues it after a `/` (s3://b/runs does not cover s3://b/runs-old/x). With ARTIFACT_ROOTS or S3_ARTIFACT_ROOTS
 * set, paths are confined, and an s3:// URI under no S3 root is refused; with neither set nothing is confined.
 */
export interface S3Roots {
  readWrite: S3Location[];
  readOnly: S3Location[];
}

function rootList(raw: string | undefined, name: string): S3Location[] {
  return (raw ?? '')
    .split(/[\s,]+/)
    .filter((r) => r !== '')
    .map((r) => {
      // A bucket-wide root has no key; parseS3Uri wants one, so a placeholder is parsed and dropped.
      const bare = /^s3:\/\/([^/]+)\/?$/i.exec(r);
      if (bare) return { bucket: parseS3Uri(`s3://${bare[1]}/x`).bucket, key: '' };
      try {
        return parseS3Uri(r);
      } catch (error) {
        throw new Error(`${name}: ${(error as Error).message}`);
      }
    });
}

/** The S3 roots from the environment; undefined when neither ARTIFACT_ROOTS nor S3_ARTIFACT_ROOTS is set. */
export function s3RootsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Roots | undefined {
  if (!env.ARTIFACT_ROOTS?.trim() && !env.S3_ARTIFACT_ROOTS?.trim()) return undefined;
  return { readWrite: rootList(env.S3_ARTIFACT_ROOTS, 'S3_ARTIFACT_ROOTS'), readOnly: rootList(env.S3_READ_ONLY_ROOTS, 'S3_READ_ONLY_ROOTS') };
}

function covers(root: S3Location, location: S3Location): boolean {
  return root.bucket === location.bucket && (root.key === '' || location.key === root.key || location.key.startsWith(`${root.key}/`));
}

/**
 * The location of `uri` if this service may `mode` it, else a PermissionDeniedError on `field` (the same message
 * whether or not the object exists). A malformed URI is the `invalid-uri` ArtifactError of parseS3Uri.
 */
export function confineS3Uri(uri: string, field: string, mode: 'read' | 'write', roots = s3RootsFromEnv()): S3Location {
  const location = parseS3Uri(uri);
  if (!roots) return location;
  const allowed = mode === 'write' ? roots.readWrite : [...roots.readWrite, ...roots.readOnly];
  if (!allowed.some((root) => covers(root, location))) {
    const where = mode === 'write' ? 'S3_ARTIFACT_ROOTS' : 'S3_ARTIFACT_ROOTS or S3_READ_ONLY_ROOTS';
    throw new PermissionDeniedError(field, `the object is outside the buckets and prefixes this service may ${mode} (${where})`);
  }
  return location;
}
