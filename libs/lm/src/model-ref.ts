import { ArtifactError, localInput, verifyArtifact } from '@alignment/artifacts';
import { LmArgumentError, ModelDirectoryError } from './errors';
import type { Lease, ModelCache } from './model-cache';

/** Where a model directory is: common.proto's ArtifactRef (file:// or s3:// URI or local path, optional sha256). */
export interface ModelLocation {
  uri: string;
  /** sha256 of the directory's manifest.json; empty = not verified. */
  sha256: string;
}

/**
 * Resolves a model reference, verifies it against its sha256 (once per model, see ModelCache) and loads it through
 * the cache. Every problem with the reference is an LmArgumentError on `field` + `.uri` or `.sha256`, where
 * `field` is the reference's path in the request (e.g. `model.onnx`), so the service answers INVALID_ARGUMENT
 * naming it: a missing or malformed directory is the caller's mistake, not the server's.
 */
export async function acquireModel<T extends { release(): Promise<void> }, V = never>(
  cache: ModelCache<T, V>,
  location: ModelLocation | undefined,
  field: string,
  variant?: { key: string; value: V },
): Promise<Lease<T>> {
  if (!location || location.uri.trim() === '') throw new LmArgumentError(`${field}.uri`, 'is required (the ONNX export directory)');
  let directory: string;
  try {
    // s3:// is downloaded into the cache (and checked against its sha256) first; a local path is confined.
    directory = await localInput(location.uri, `${field}.uri`, { sha256: location.sha256, kind: 'dir' });
  } catch (error) {
    if (error instanceof ArtifactError) throw new LmArgumentError(error.kind === 'mismatch' ? `${field}.sha256` : `${field}.uri`, error.message);
    throw error;
  }
  try {
    return await cache.acquire(directory, { sha256: location.sha256, verify: () => verifyArtifact(directory, location.sha256) }, variant);
  } catch (error) {
    if (error instanceof ArtifactError) {
      throw new LmArgumentError(error.kind === 'mismatch' ? `${field}.sha256` : `${field}.uri`, error.message);
    }
    if (error instanceof ModelDirectoryError) throw new LmArgumentError(`${field}.uri`, error.message);
    throw error;
  }
}
