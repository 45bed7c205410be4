import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ArtifactInfo } from '../atomic';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { ArtifactError } from '../errors';
import { verifyArtifact } from '../manifest';
import { s3Client } from './client';
import { confineS3Uri } from './confine';
import { alreadyPublished, getDirectory, publishedSha256, putDirectory } from './directory';
import { deleteKeys, getFile, listKeys, putFile, s3Failure } from './objects';
import { type S3Location, s3Uri } from './uri';
import { sha256File } from '../hash';

/**
 * Where s3:// inputs are downloaded: S3_CACHE_DIR, else `s3-cache` under the first ARTIFACT_ROOTS directory (the
 * data root), else under the system's temporary directory. A key maps to `<cache>/<bucket>/<key>` (parseS3Uri
 * refuses `..` segments, so it stays inside).
 */
export function s3CacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.S3_CACHE_DIR?.trim()) return path.resolve(env.S3_CACHE_DIR.trim());
  const dataRoot = (env.ARTIFACT_ROOTS ?? '').split(':').map((r) => r.trim()).find((r) => r !== '');
  return dataRoot ? path.join(path.resolve(dataRoot), 's3-cache') : path.join(os.tmpdir(), 'alignment-s3-cache');
}

function cachePath(location: S3Location): string {
  return path.join(s3CacheDir(), location.bucket, ...location.key.split('/'));
}

/**
 * The local copy of an s3:// input, downloaded into the cache (s3CacheDir) and verified: a file against `sha256`,
 * a directory (`kind: 'dir'`) against its manifest and `sha256` (a prefix without manifest.json is absent:
 * `not-found`). A verified cached copy is reused when `sha256` is given. `field` names the request field for
 * confinement (PermissionDeniedError outside S3_ARTIFACT_ROOTS / S3_READ_ONLY_ROOTS).
 */
export async function fetchArtifact(uri: string, field: string, options: { sha256?: string; kind: 'file' | 'dir' }): Promise<string> {
  const location = confineS3Uri(uri, field, 'read');
  const local = cachePath(location);
  const sha256 = options.sha256?.trim().toLowerCase() ?? '';
  if (sha256 !== '' && fs.existsSync(local)) {
    const cached = await verifyArtifact(local, sha256).then(
      () => true,
      () => false,
    );
    if (cached && fs.statSync(local).isDirectory() === (options.kind === 'dir')) return local;
  }
  if (options.kind === 'dir') return getDirectory(location, local, sha256);
  await fs.promises.rm(local, { recursive: true, force: true });
  return (await getFile(location, local, { sha256 })).path;
}

/**
 * Publishes a local file or directory (a model export with its manifest) to an s3:// URI this service may write
 * (PermissionDeniedError on `field` otherwise): see putFile (multipart) and putDirectory (manifest last). Other
 * content already published there is an `exists` ArtifactError; the same content is left as it is (a retry).
 */
export async function publishArtifact(localPath: string, uri: string, field: string): Promise<ArtifactInfo> {
  const location = confineS3Uri(uri, field, 'write');
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(localPath);
  } catch {
    throw new ArtifactError('not-found', `nothing to publish at ${localPath}`);
  }
  if (stat.isDirectory()) return putDirectory(localPath, location);
  const [mine, there] = await Promise.all([sha256File(localPath), publishedSha256(location)]);
  if (there === undefined) return putFile(localPath, location);
  if (there !== mine) throw alreadyPublished(location, there, mine);
  return { uri: s3Uri(location), path: localPath, sha256: mine, sizeBytes: stat.size };
}

/**
 * Deletes an s3:// artifact, file or directory (its manifest first, so readers see it absent at once, then every
 * object under its prefix); returns the bytes freed. Confined like a write.
 */
export async function deleteS3Artifact(uri: string, field: string): Promise<number> {
  const location = confineS3Uri(uri, field, 'write');
  const client = s3Client();
  const under = await listKeys(location, client);
  const manifest = under.filter((o) => o.key === `${location.key}/manifest.json`);
  await deleteKeys(location.bucket, manifest.map((o) => o.key), client);
  await deleteKeys(location.bucket, under.filter((o) => !manifest.includes(o)).map((o) => o.key), client);
  let single = 0;
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }));
    single = head.ContentLength ?? 0;
    await deleteKeys(location.bucket, [location.key], client);
  } catch (error) {
    const failure = s3Failure(location, error);
    if (!(failure instanceof ArtifactError && failure.kind === 'not-found')) throw failure;
  }
  return under.reduce((n, o) => n + o.size, single);
}
