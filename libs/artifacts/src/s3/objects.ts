import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ArtifactInfo } from '../atomic';
import { AtomicFileWriter } from '../atomic';
import { ArtifactError } from '../errors';
import { sha256File } from '../hash';
import { multipartPartBytes, s3Client } from './client';
import { type S3Location, s3Uri } from './uri';

/** The metadata key under which every object this library writes records its sha256 (x-amz-meta-sha256). */
export const SHA256_METADATA = 'sha256';

function isMissing(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket' || status === 404;
}

/** An S3 failure as an ArtifactError: `not-found` for a missing key or bucket, else `invalid-uri` saying why. */
export function s3Failure(location: S3Location, error: unknown): Error {
  if (error instanceof ArtifactError) return error;
  if (isMissing(error)) return new ArtifactError('not-found', `nothing at ${s3Uri(location)}`);
  const name = (error as Error)?.name ?? 'Error';
  return new ArtifactError('invalid-uri', `cannot use ${s3Uri(location)}: ${name}: ${(error as Error)?.message ?? String(error)}`);
}

/**
 * Uploads a local file to `location` and returns its ArtifactInfo (the s3:// URI, the local path, sha256, size).
 * Files larger than one part (S3_MULTIPART_PART_BYTES, default 8 MiB) go up as a multipart upload, 4 parts at a
 * time; S3 shows the object only once the upload completes, so a reader never sees a prefix of it.
 */
export async function putFile(localPath: string, location: S3Location, client: S3Client = s3Client()): Promise<ArtifactInfo> {
  const sha256 = await sha256File(localPath);
  const sizeBytes = (await fs.promises.stat(localPath)).size;
  try {
    await new Upload({
      client,
      partSize: multipartPartBytes(),
      queueSize: 4,
      leavePartsOnError: false,
      params: { Bucket: location.bucket, Key: location.key, Body: fs.createReadStream(localPath), Metadata: { [SHA256_METADATA]: sha256 } },
    }).done();
  } catch (error) {
    throw s3Failure(location, error);
  }
  return { uri: s3Uri(location), path: localPath, sha256, sizeBytes };
}

/** Uploads bytes held in memory (a manifest) as one PUT. */
export async function putBytes(bytes: Buffer, location: S3Location, client: S3Client = s3Client()): Promise<string> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    await new Upload({ client, params: { Bucket: location.bucket, Key: location.key, Body: bytes, Metadata: { [SHA256_METADATA]: sha256 } } }).done();
  } catch (error) {
    throw s3Failure(location, error);
  }
  return sha256;
}

/** An object's bytes, whole (for small objects: manifests). */
export async function getBytes(location: S3Location, client: S3Client = s3Client()): Promise<Buffer> {
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (error) {
    throw s3Failure(location, error);
  }
}

/**
 * Downloads an object to `destination` atomically (AtomicFileWriter: the file appears whole or not at all) and
 * returns its sha256 and size. With `expected` (sha256 and/or size) a mismatch aborts the write and is a
 * `mismatch` ArtifactError: nothing unverified is left under the destination's name.
 */
export async function getFile(
  location: S3Location,
  destination: string,
  expected: { sha256?: string; sizeBytes?: number } = {},
  client: S3Client = s3Client(),
): Promise<ArtifactInfo> {
  let body: Readable;
  try {
    body = (await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }))).Body as Readable;
  } catch (error) {
    throw s3Failure(location, error);
  }
  const writer = await AtomicFileWriter.open(destination);
  try {
    for await (const chunk of body) await writer.write(chunk as Buffer);
  } catch (error) {
    await writer.abort();
    throw s3Failure(location, error);
  }
  // The digest is known only at commit, so the file is committed and then removed if it is not the one promised.
  const info = await writer.commit();
  const want = expected.sha256?.trim().toLowerCase();
  if ((want && info.sha256 !== want) || (expected.sizeBytes !== undefined && info.sizeBytes !== expected.sizeBytes)) {
    await fs.promises.rm(info.path, { force: true });
    throw new ArtifactError('mismatch', `${s3Uri(location)}: content differs from its sha256 ${want ?? ''}`.trim());
  }
  return { ...info, uri: s3Uri(location) };
}

/** Every key under `prefix/` (a directory artifact's objects), paged through. */
export async function listKeys(prefix: S3Location, client: S3Client = s3Client()): Promise<{ key: string; size: number }[]> {
  const keys: { key: string; size: number }[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: prefix.bucket, Prefix: `${prefix.key}/`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.push({ key: o.Key!, size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (error) {
    throw s3Failure(prefix, error);
  }
  return keys;
}

/** Deletes the given keys of a bucket, 1000 per request (S3's limit). */
export async function deleteKeys(bucket: string, keys: string[], client: S3Client = s3Client()): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    try {
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    } catch (error) {
      throw s3Failure({ bucket, key: batch[0] }, error);
    }
  }
}

/**
 * Checks, before any work, that the bucket of an output exists and answers this client (HeadBucket): a missing
 * bucket or refused credentials are an `invalid-uri` ArtifactError now, not after the work when the upload fails.
 */
export async function checkBucket(location: S3Location, client: S3Client = s3Client()): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: location.bucket }));
  } catch (error) {
    const failure = s3Failure(location, error);
    throw new ArtifactError('invalid-uri', failure instanceof ArtifactError && failure.kind === 'not-found' ? `no bucket '${location.bucket}' (${s3Uri(location)})` : failure.message);
  }
}
