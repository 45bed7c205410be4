import { ArtifactError } from '../errors';

/** An object (or, for a directory artifact, a key prefix) in an S3 bucket: common.proto's `s3://bucket/key`. */
export interface S3Location {
  bucket: string;
  /** The key without a leading or trailing `/`; names the directory's prefix for a directory artifact. */
  key: string;
}

/** Whether `uri` uses the s3:// scheme (any case). */
export function isS3Uri(uri: string): boolean {
  return /^s3:\/\//i.test(uri.trim());
}

// S3's bucket naming rules: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending alphanumeric.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** S3's limit on a key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

/**
 * The bucket and key of an `s3://bucket/key` URI. The key must be non-empty, at most 1024 bytes, without NUL, empty
 * segments or `.`/`..` segments: S3 takes them literally, but a key is also a path under the local cache
 * (cache.ts), where `..` would climb out of it. An `invalid-uri` ArtifactError says what is wrong.
 */
export function parseS3Uri(uri: string): S3Location {
  const trimmed = uri.trim();
  if (!isS3Uri(trimmed)) throw new ArtifactError('invalid-uri', `not an s3:// URI: '${uri}'`);
  const rest = trimmed.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const key = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (!BUCKET.test(bucket)) throw new ArtifactError('invalid-uri', `'${bucket}' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)`);
  if (key === '') throw new ArtifactError('invalid-uri', `s3://${bucket} names no key: write s3://${bucket}/path/to/artifact`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new ArtifactError('invalid-uri', `the key is ${Buffer.byteLength(key)} bytes long; S3 allows ${MAX_KEY_BYTES}`);
  if (key.includes('\0')) throw new ArtifactError('invalid-uri', 'the key contains a NUL character');
  if (key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new ArtifactError('invalid-uri', `the key '${key}' has an empty, '.' or '..' segment`);
  }
  return { bucket, key };
}

/** The URI of a location. */
export function s3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

/** The location of `relative` (a manifest entry's path) under a directory artifact's prefix. */
export function childOf(dir: S3Location, relative: string): S3Location {
  return { bucket: dir.bucket, key: `${dir.key}/${relative}` };
}
