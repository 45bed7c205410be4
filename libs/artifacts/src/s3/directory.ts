import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ArtifactInfo } from '../atomic';
import { writeFileAtomic } from '../atomic';
import { ArtifactError } from '../errors';
import { sha256File } from '../hash';
import { MANIFEST_FILE, type Manifest, parseManifest, verifyArtifact } from '../manifest';
import { s3Client } from './client';
import { deleteKeys, getBytes, getFile, listKeys, putBytes, putFile } from './objects';
import { childOf, type S3Location, s3Uri } from './uri';

/** The manifest of a local directory: every file but manifest.json, sorted by path (as the trainer's export writes it). */
async function manifestOf(dir: string): Promise<Manifest> {
  const files: Manifest['files'] = [];
  const walk = async (sub: string): Promise<void> => {
    for (const entry of (await fs.promises.readdir(path.join(dir, sub), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const relative = sub === '' ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory()) await walk(relative);
      else if (entry.isFile() && relative !== MANIFEST_FILE) {
        const full = path.join(dir, relative);
        files.push({ path: relative, sha256: await sha256File(full), size_bytes: (await fs.promises.stat(full)).size });
      }
    }
  };
  await walk('');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { version: 1, files, total_size_bytes: files.reduce((n, f) => n + f.size_bytes, 0) };
}

/**
 * Publishes a local directory artifact under `location` (a key prefix). Its manifest.json is checked against the
 * files when it has one (a trainer export), else written. Publishing is atomic for readers: the files go up and the
 * manifest goes up last, so a reader (getDirectory) sees the complete directory or none (a prefix without its
 * manifest is absent). Like a local output, a published directory is never replaced: a manifest already there with
 * other content is an `exists` ArtifactError, the same manifest is this publication done before (a retry: nothing
 * goes up). Objects under the prefix that the manifest does not list (an interrupted attempt's) are removed
 * afterwards. Returns the directory's ArtifactInfo (sha256 of the manifest, total file bytes).
 */
export async function putDirectory(localDir: string, location: S3Location, client: S3Client = s3Client()): Promise<ArtifactInfo> {
  const manifestPath = path.join(localDir, MANIFEST_FILE);
  let manifest: Manifest;
  if (fs.existsSync(manifestPath)) {
    await verifyArtifact(localDir, await sha256File(manifestPath));
    manifest = parseManifest(localDir, await fs.promises.readFile(manifestPath, 'utf8'));
  } else {
    manifest = await manifestOf(localDir);
    await writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  }
  const manifestKey = childOf(location, MANIFEST_FILE);
  const mine = await sha256File(manifestPath);
  const there = await publishedSha256(location, client);
  if (there !== undefined) {
    if (there !== mine) throw alreadyPublished(location, there, mine);
    return { uri: s3Uri(location), path: localDir, sha256: mine, sizeBytes: manifest.total_size_bytes };
  }
  const before = await listKeys(location, client);
  for (const entry of manifest.files) await putFile(path.join(localDir, entry.path), childOf(location, entry.path), client);
  const sha256 = await putBytes(await fs.promises.readFile(manifestPath), manifestKey, client);
  const listed = new Set([manifestKey.key, ...manifest.files.map((f) => childOf(location, f.path).key)]);
  await deleteKeys(location.bucket, before.map((o) => o.key).filter((k) => !listed.has(k)), client);
  return { uri: s3Uri(location), path: localDir, sha256, sizeBytes: manifest.total_size_bytes };
}

/** The `exists` ArtifactError of a publication over other content (the wording of AtomicFileWriter's). */
export function alreadyPublished(location: S3Location, there: string, mine: string): ArtifactError {
  return new ArtifactError('exists', `${s3Uri(location)} is already published with other content (sha256 ${there}, this write's ${mine}); it is not replaced`);
}

/**
 * The sha256 of what is published at `location`: a directory's manifest.json, else an object at the key itself;
 * undefined when nothing is (a prefix without its manifest is an unfinished publication, not a published one).
 */
export async function publishedSha256(location: S3Location, client: S3Client = s3Client()): Promise<string | undefined> {
  for (const at of [childOf(location, MANIFEST_FILE), location]) {
    try {
      return createHash('sha256').update(await getBytes(at, client)).digest('hex');
    } catch (error) {
      if (!(error instanceof ArtifactError && error.kind === 'not-found')) throw error;
    }
  }
  return undefined;
}

/** The manifest of a published directory; `not-found` when it has none (absent or still being written). */
export async function readRemoteManifest(location: S3Location, client: S3Client = s3Client()): Promise<{ manifest: Manifest; sha256: string; bytes: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await getBytes(childOf(location, MANIFEST_FILE), client);
  } catch (error) {
    if (error instanceof ArtifactError && error.kind === 'not-found') {
      throw new ArtifactError('not-found', `no directory artifact at ${s3Uri(location)} (no ${MANIFEST_FILE}: absent, or not yet fully written)`);
    }
    throw error;
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { manifest: parseManifest(s3Uri(location), bytes.toString('utf8')), sha256, bytes };
}

/**
 * Downloads a published directory to `destination` (replaced if present) and returns its local path: the manifest
 * must exist (else `not-found`) and match `expectedSha256` when given (else `mismatch`), and every file it lists is
 * checked against its entry while downloading (`mismatch` naming the file). The files land in a temporary sibling
 * renamed into place at the end, so the destination is never a partial directory.
 */
export async function getDirectory(location: S3Location, destination: string, expectedSha256 = '', client: S3Client = s3Client()): Promise<string> {
  const { manifest, sha256, bytes } = await readRemoteManifest(location, client);
  const want = expectedSha256.trim().toLowerCase();
  if (want !== '' && sha256 !== want) throw new ArtifactError('mismatch', `sha256 of ${s3Uri(childOf(location, MANIFEST_FILE))} is not ${want}`);
  const dest = path.resolve(destination);
  const temp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    for (const entry of manifest.files) {
      const local = path.resolve(temp, entry.path);
      if (!local.startsWith(temp + path.sep)) throw new ArtifactError('format', `${s3Uri(location)}/${MANIFEST_FILE}: entry '${entry.path}' leaves the directory`);
      try {
        await getFile(childOf(location, entry.path), local, { sha256: entry.sha256, sizeBytes: entry.size_bytes }, client);
      } catch (error) {
        if (error instanceof ArtifactError && error.kind !== 'invalid-uri') {
          throw new ArtifactError('mismatch', `${s3Uri(location)} does not match its manifest: ${entry.path}: ${error.kind === 'not-found' ? 'missing' : 'content differs from the manifest'}`);
        }
        throw error;
      }
    }
    await writeFileAtomic(path.join(temp, MANIFEST_FILE), bytes);
    await fs.promises.rm(dest, { recursive: true, force: true });
    await fs.promises.rename(temp, dest);
  } catch (error) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw error;
  }
  return dest;
}
