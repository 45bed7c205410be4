import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkRecord, FormatError } from '@alignment/contracts';
import { ArtifactError } from './errors';
import { sha256File } from './hash';

/**
 * A directory artifact's listing (written by the trainer's export, services/trainer/src/alignment_trainer/training/export.py):
 * every file's path relative to the directory, sha256 and size. The directory's ArtifactRef.sha256 is the sha256
 * of this file. Defined once by proto/alignment/v1/formats.proto's ArtifactManifest (docs/formats.md).
 */
export const MANIFEST_FILE = 'manifest.json';

export interface ManifestEntry {
  path: string;
  sha256: string;
  size_bytes: number;
}

export interface Manifest {
  version: number;
  files: ManifestEntry[];
  total_size_bytes: number;
}

async function statOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.stat(p);
  } catch {
    return null;
  }
}

/** Parses and checks a manifest.json (`dir` names where it is, for messages). */
export function parseManifest(dir: string, text: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ArtifactError('format', `${path.join(dir, MANIFEST_FILE)} is not valid JSON (${(error as Error).message})`);
  }
  const files = (parsed as Manifest | null)?.files;
  if (!Array.isArray(files) || files.some((f) => typeof f?.path !== 'string' || typeof f?.sha256 !== 'string')) {
    throw new ArtifactError('format', `${path.join(dir, MANIFEST_FILE)} has no valid "files" list`);
  }
  try {
    return checkRecord<Manifest>('ArtifactManifest', parsed);
  } catch (error) {
    if (error instanceof FormatError) throw new ArtifactError('format', `${path.join(dir, MANIFEST_FILE)}: ${error.message}`);
    throw error;
  }
}

/**
 * Checks an artifact against the sha256 its reference promised; an empty `expectedSha256` means "not verified"
 * (common.proto) and only checks that the path exists. A file is hashed whole; a directory must hold a
 * manifest.json with that sha256, and every file the manifest lists must match its entry (size and sha256), so a
 * model directory is verified completely, weights included.
 */
export async function verifyArtifact(artifactPath: string, expectedSha256: string): Promise<void> {
  const stat = await statOrNull(artifactPath);
  if (!stat) throw new ArtifactError('not-found', `nothing at ${artifactPath}`);
  const expected = expectedSha256.trim().toLowerCase();
  if (expected === '') return;
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw new ArtifactError('mismatch', `sha256 must be 64 lower-case hex digits, got '${expectedSha256}'`);
  }
  if (!stat.isDirectory()) {
    // A device or FIFO would be hashed forever (issue 12: /dev/zero).
    if (!stat.isFile()) throw new ArtifactError('format', `${artifactPath}: not a regular file or directory`);
    // The actual digest is not quoted: it would tell any caller the sha256 of any file this process can read.
    if ((await sha256File(artifactPath)) !== expected) throw new ArtifactError('mismatch', `sha256 of ${artifactPath} is not ${expected}`);
    return;
  }
  const manifestPath = path.join(artifactPath, MANIFEST_FILE);
  if (!(await statOrNull(manifestPath))?.isFile()) {
    throw new ArtifactError('mismatch', `sha256 given but ${artifactPath} has no ${MANIFEST_FILE} to check it against`);
  }
  if ((await sha256File(manifestPath)) !== expected) {
    throw new ArtifactError('mismatch', `sha256 of ${manifestPath} is not ${expected}`);
  }
  const manifest = parseManifest(artifactPath, await fs.promises.readFile(manifestPath, 'utf8'));
  const problems: string[] = [];
  for (const entry of manifest.files) {
    const filePath = path.join(artifactPath, entry.path);
    const fileStat = await statOrNull(filePath);
    if (!fileStat?.isFile()) problems.push(`${entry.path}: missing`);
    else if (fileStat.size !== entry.size_bytes || (await sha256File(filePath)) !== entry.sha256) {
      problems.push(`${entry.path}: content differs from the manifest`);
    }
  }
  if (problems.length > 0) {
    throw new ArtifactError('mismatch', `${artifactPath} does not match its manifest: ${problems.join('; ')}`);
  }
}
