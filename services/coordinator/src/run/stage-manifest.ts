import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArtifactError, confineS3Uri, isS3Uri, publishedSha256, sha256File, toLocalPath, verifyArtifact, writeFileAtomic } from '@alignment/artifacts';
import { Stage, type ArtifactRef } from '@alignment/contracts';

/**
 * Every stage ends by writing `stage.json` into its directory ($DATA_DIR/runs/<run>/round-<t>/<stage>/), after all
 * its outputs are in place: the stage's seed, the sha256 of each input it consumed, and the sha256 of each output
 * (a file's own, or a directory's manifest.json). A stage counts as done when — and only when — its stage.json
 * verifies: it names this run/round/stage, its inputs are the ones the stage would consume now, and every output
 * re-hashes to the recorded sha256. So a resumed run skips complete stages, re-executes a stage whose output was
 * lost or altered, and re-executes any stage downstream of an output that changed.
 */
export const STAGE_MANIFEST = 'stage.json';
const MANIFEST_VERSION = 1;

/** Beside a stage.json: the outputs retention deleted (retention.ts), which verifyStage then does not re-hash. */
export const PRUNED_FILE = 'pruned.json';

/** The outputs of the stage in `dir` that retention deleted (none when it has no pruned.json). */
export function prunedOutputs(dir: string): Set<string> {
  try {
    const names = JSON.parse(fs.readFileSync(path.join(dir, PRUNED_FILE), 'utf8')) as { outputs?: unknown };
    return new Set(Array.isArray(names.outputs) ? names.outputs.filter((n): n is string => typeof n === 'string') : []);
  } catch {
    return new Set();
  }
}

export type OutputKind = 'file' | 'dir';

export interface StageOutput extends ArtifactRef {
  kind: OutputKind;
}

export interface StageManifest {
  version: number;
  run_id: string;
  round: number;
  stage: string;
  attempt: number;
  seed: number;
  /** Input name -> sha256 (or, for an input without one, its URI). */
  inputs: Record<string, string>;
  outputs: Record<string, { uri: string; sha256: string; size_bytes: number; kind: OutputKind }>;
  /** Non-finite values are written as null. */
  metrics: Record<string, number | null>;
  job_id?: string;
  written_at: string;
}

export interface StageIdentity {
  runId: string;
  round: number;
  stage: Stage;
}

export function stageName(stage: Stage): string {
  return Stage[stage].replace(/^STAGE_/, '');
}

export async function writeStageManifest(
  dir: string,
  identity: StageIdentity,
  content: { attempt: number; seed: number; inputs: Record<string, string>; outputs: Record<string, StageOutput>; metrics: Record<string, number>; jobId?: string },
): Promise<string> {
  const manifest: StageManifest = {
    version: MANIFEST_VERSION,
    run_id: identity.runId,
    round: identity.round,
    stage: stageName(identity.stage),
    attempt: content.attempt,
    seed: content.seed,
    inputs: content.inputs,
    outputs: Object.fromEntries(
      Object.entries(content.outputs).map(([name, o]) => [name, { uri: o.uri, sha256: o.sha256, size_bytes: o.sizeBytes, kind: o.kind }]),
    ),
    metrics: Object.fromEntries(Object.entries(content.metrics).map(([k, v]) => [k, Number.isFinite(v) ? v : null])),
    ...(content.jobId ? { job_id: content.jobId } : {}),
    written_at: new Date().toISOString(),
  };
  const info = await writeFileAtomic(path.join(dir, STAGE_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  return info.sha256;
}

export type Verification =
  | { ok: true; manifest: StageManifest; manifestSha256: string; outputs: Record<string, StageOutput>; metrics: Record<string, number> }
  | { ok: false; reason: string };

/**
 * Re-hashes one output: a file whole, a directory through its manifest.json (every listed file). An s3:// output (a
 * model in MODEL_STORE_URI) is checked by what is published there (the object, or the directory's manifest.json,
 * published last): published artifacts are never replaced, and readers check every file against that manifest.
 */
export async function verifyOutput(output: { uri: string; sha256: string; kind: OutputKind }): Promise<string | undefined> {
  if (isS3Uri(output.uri)) return verifyPublished(output);
  let local: string;
  try {
    local = toLocalPath(output.uri);
  } catch (error) {
    return (error as Error).message;
  }
  if (!output.sha256) return `${local} has no recorded sha256`;
  if (output.kind === 'file') {
    const actual = await sha256File(local).catch(() => undefined);
    if (actual === undefined) return `${local} is missing`;
    return actual === output.sha256 ? undefined : `${local} has sha256 ${actual}, recorded ${output.sha256}`;
  }
  try {
    await verifyArtifact(local, output.sha256);
    return undefined;
  } catch (error) {
    return error instanceof ArtifactError ? error.message : String(error);
  }
}

async function verifyPublished(output: { uri: string; sha256: string }): Promise<string | undefined> {
  if (!output.sha256) return `${output.uri} has no recorded sha256`;
  let there: string | undefined;
  try {
    there = await publishedSha256(confineS3Uri(output.uri, 'output', 'read'));
  } catch (error) {
    return `${output.uri}: ${(error as Error).message}`;
  }
  if (there === undefined) return `${output.uri} is missing (nothing published there)`;
  return there === output.sha256 ? undefined : `${output.uri} has sha256 ${there}, recorded ${output.sha256}`;
}

/**
 * Whether the stage in `dir` is complete and verified for these inputs (see STAGE_MANIFEST). When the database
 * recorded the manifest's sha256 (the stage SUCCEEDED), the manifest must still have it.
 */
export async function verifyStage(
  dir: string,
  identity: StageIdentity,
  inputs: Record<string, string>,
  recordedManifestSha256?: string,
): Promise<Verification> {
  const file = path.join(dir, STAGE_MANIFEST);
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch {
    return { ok: false, reason: 'no stage.json' };
  }
  const manifestSha256 = await sha256File(file);
  if (recordedManifestSha256 && recordedManifestSha256 !== manifestSha256) {
    return { ok: false, reason: `stage.json has sha256 ${manifestSha256}, the database recorded ${recordedManifestSha256}` };
  }
  let manifest: StageManifest;
  try {
    manifest = JSON.parse(text) as StageManifest;
  } catch {
    return { ok: false, reason: 'stage.json is not valid JSON' };
  }
  if (manifest.version !== MANIFEST_VERSION || manifest.run_id !== identity.runId || manifest.round !== identity.round || manifest.stage !== stageName(identity.stage)) {
    return { ok: false, reason: 'stage.json belongs to another run, round, stage or version' };
  }
  const expected = JSON.stringify(sortKeys(inputs));
  if (JSON.stringify(sortKeys(manifest.inputs ?? {})) !== expected) {
    return { ok: false, reason: 'its inputs changed since it ran' };
  }
  const outputs: Record<string, StageOutput> = {};
  // Outputs retention deleted count as verified: the stage ran, and its sha256s (the inputs' identities) stand.
  const pruned = recordedManifestSha256 ? prunedOutputs(dir) : new Set<string>();
  for (const [name, o] of Object.entries(manifest.outputs ?? {})) {
    const problem = pruned.has(name) ? undefined : await verifyOutput(o);
    if (problem) return { ok: false, reason: `output ${name}: ${problem}` };
    outputs[name] = { uri: o.uri, sha256: o.sha256, sizeBytes: o.size_bytes, kind: o.kind };
  }
  const metrics: Record<string, number> = {};
  for (const [name, value] of Object.entries(manifest.metrics ?? {})) if (typeof value === 'number') metrics[name] = value;
  return { ok: true, manifest, manifestSha256, outputs, metrics };
}

function sortKeys(record: Record<string, string>): Array<[string, string]> {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
