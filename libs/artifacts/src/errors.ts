/**
 * Why an artifact could not be used. The caller says what that means for its work: a service turns it into an
 * InvalidArgumentError (@alignment/errors) on the request field that named the artifact.
 */
export type ArtifactErrorKind =
  /** No file or directory at the URI. */
  | 'not-found'
  /** The content does not have the sha256 its reference promised, or does not match its manifest. */
  | 'mismatch'
  /** The URI is malformed, or names a store this process cannot use (a gs:// URI, an S3 endpoint that refuses the call). */
  | 'invalid-uri'
  /** The file exists but is not in the expected format (e.g. a JSONL line that is not JSON). */
  | 'format'
  /** A write that keeps what is there found other content at its destination (AtomicWriteOptions.existing). */
  | 'exists';

/** Thrown by every function of this library when an artifact cannot be read, verified or written. */
export class ArtifactError extends Error {
  constructor(
    readonly kind: ArtifactErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ArtifactError';
  }
}
