import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArtifactError, confinePath, fetchArtifact, fileUri, isS3Uri, sha256File, toLocalPath, verifyArtifact, type DataPrompt } from '@alignment/artifacts';
import type { ArtifactRef, ModelRef } from '@alignment/contracts';
import { DataFormatError, readPrompts } from '../data';
import { check, fail, field } from './fields';

// The spec's input files and directories: each must exist, and comes back pinned (absolute file:// URI, sha256) so
// that a resumed run can refuse inputs that changed. An s3:// input is downloaded into the cache under the data root
// (S3_CACHE_DIR, libs/artifacts fetchArtifact), checked against its sha256, and pinned there: the stages and the
// services then read the local copy, as they read the run's own directories.

async function localPath(ref: ArtifactRef | undefined, p: string, kind: 'file' | 'dir'): Promise<string> {
  if (!ref || ref.uri.trim() === '') fail(`${p}.uri`, 'is required');
  try {
    if (isS3Uri(ref!.uri)) return await fetchArtifact(ref!.uri, field(`${p}.uri`), { sha256: ref!.sha256, kind });
    return confinePath(toLocalPath(ref!.uri), field(`${p}.uri`), 'read');
  } catch (error) {
    if (error instanceof ArtifactError) fail(error.kind === 'mismatch' ? `${p}.sha256` : `${p}.uri`, error.message);
    throw error;
  }
}

/** A file input: exists, and its sha256 is pinned (checked against the given one, if any). */
export async function pinFile(ref: ArtifactRef | undefined, p: string): Promise<{ file: string; pinned: ArtifactRef }> {
  const file = await localPath(ref, p, 'file');
  const stat = await fs.promises.stat(file).catch(() => undefined);
  check(stat?.isFile() === true, `${p}.uri`, `no file at ${file}`);
  // A file that cannot be read (/proc/self/mem: EIO) is the caller's to fix, not an INTERNAL error (tools/fuzz).
  const sha256 = await sha256File(file).catch((error: unknown) => {
    if (error instanceof ArtifactError) fail(`${p}.uri`, error.message);
    throw error;
  });
  if (ref!.sha256 !== '') check(ref!.sha256.toLowerCase() === sha256, `${p}.sha256`, `the sha256 of ${file} is not ${ref!.sha256}`); // the actual one is not quoted (issue 12)
  return { file, pinned: { uri: fileUri(file), sha256, sizeBytes: stat!.size } };
}

/** A directory input: exists, holds `required`, and matches its manifest when a sha256 is given. */
async function pinDirectory(ref: ArtifactRef | undefined, p: string, required: string, what: string): Promise<ArtifactRef> {
  const dir = await localPath(ref, p, 'dir');
  const stat = await fs.promises.stat(dir).catch(() => undefined);
  check(stat?.isDirectory() === true, `${p}.uri`, `no directory at ${dir} (expected ${what})`);
  check(fs.existsSync(path.join(dir, required)), `${p}.uri`, `${dir} has no ${required} (expected ${what})`);
  if (ref!.sha256 !== '') {
    try {
      await verifyArtifact(dir, ref!.sha256);
    } catch (error) {
      fail(`${p}.sha256`, error instanceof ArtifactError ? error.message : String(error));
    }
  }
  return { uri: fileUri(dir), sha256: ref!.sha256.toLowerCase(), sizeBytes: ref!.sizeBytes };
}

export async function pinModel(model: ModelRef | undefined, p: string, needs: { hf: boolean }): Promise<ModelRef> {
  check(model !== undefined, p, 'is required');
  const onnx = await pinDirectory(model!.onnx, `${p}.onnx`, 'model.onnx', 'an ONNX export with model.onnx');
  if (!needs.hf && !model!.hfCheckpoint?.uri) return { onnx };
  const hfCheckpoint = await pinDirectory(model!.hfCheckpoint, `${p}.hf_checkpoint`, 'config.json', 'a Hugging Face checkpoint with config.json');
  return { hfCheckpoint, onnx };
}

/** The prompts of a prompt set, with where each is (for errors); a bad file fails naming `<p>.uri`. */
export async function promptsOf(file: string, p: string): Promise<Array<{ prompt: DataPrompt; where: string }>> {
  try {
    return (await readPrompts(file)).map((r) => ({ prompt: r.prompt, where: r.where }));
  } catch (error) {
    if (error instanceof DataFormatError) fail(`${p}.uri`, error.message);
    throw error;
  }
}
