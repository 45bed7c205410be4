import * as fs from 'node:fs';
import * as path from 'node:path';
import { confineS3Uri, deleteS3Artifact, isS3Uri, writeFileAtomic } from '@alignment/artifacts';
import { JobState, Stage, type RunSpec } from '@alignment/contracts';
import { FailedPreconditionError } from '@alignment/errors';
import type { PlannedStage } from './plan';
import { PRUNED_FILE, prunedOutputs, STAGE_MANIFEST, stageName, type StageManifest } from './stage-manifest';

/**
 * Disk use and retention of a run's directory ($DATA_DIR/runs/<run_id>): the bytes GetRun reports (Run.disk_bytes),
 * the pruning of old rounds' model checkpoints and exports (RunSpec.keep_last_checkpoints), and DeleteRun's removal.
 * A LEARN model recorded as an s3:// URI (a directory artifact: objects under a prefix, manifest.json published
 * last) is pruned and deleted too, manifest first (deleteS3Artifact), so an interrupted deletion leaves a prefix that
 * readers see as absent, never a checkpoint listed whole with objects missing; only where this coordinator may write
 * (S3_ARTIFACT_ROOTS). Run.disk_bytes counts the run's directory only: it is read on every GetRun and WatchRun event,
 * synchronously, and listing a bucket there would put network calls on every read (DeleteRun's freed_bytes does
 * count the s3:// objects it deletes; Run.object_store_bytes, listed at stage and round ends, counts those in the
 * model store: run-resources.ts).
 */

/** The LEARN outputs retention deletes: the model checkpoint and its ONNX export (directories). */
export const PRUNABLE_OUTPUTS = ['model.hf_checkpoint', 'model.onnx'] as const;
/**
 * The rounds whose model a later stage still reads, whatever keep_last_checkpoints says: round 0's with
 * frozen_judge, whose π_0 judges every round (unless judge_learning_rate trains a separate π_J, which is not pruned).
 */
export function pinnedRounds(spec: RunSpec): number[] {
  return spec.frozenJudge && spec.judgeLearningRate === undefined ? [0] : [];
}

/** The apparent size of everything under `dir`, directories and symbolic links included, as `du -sb` counts it. 0 if absent. */
export function diskBytes(dir: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.size;
  let total = stat.size;
  for (const name of fs.readdirSync(dir)) total += diskBytes(path.join(dir, name));
  return total;
}

/** Whether `planned` is the last stage of its round in `plan` (the round is then finished). */
export function endsRound(plan: readonly PlannedStage[], index: number): boolean {
  return index === plan.length - 1 || plan[index + 1].round !== plan[index].round;
}

/**
 * Applies RunSpec.keep_last_checkpoints after `round` finished: the LEARN stages of rounds <= round - K lose their
 * model checkpoint and ONNX export. pruned.json is written first (a crash mid-way leaves a stage that resumes as
 * pruned), then each directory is deleted; stage.json and the database records stay, so a resumed run does not
 * execute those stages again. The last round's model is never pruned (only rounds before `round` are), nor those of
 * the `pinned` rounds (pinnedRounds). Returns the bytes freed. K = 0 keeps everything.
 */
export async function pruneCheckpoints(runDir: string, keepLast: number, round: number, pinned: readonly number[] = []): Promise<number> {
  if (keepLast <= 0) return 0;
  let freed = 0;
  for (let old = round - keepLast; old >= 0; old -= 1) {
    if (pinned.includes(old)) continue;
    const dir = path.join(runDir, `round-${old}`, stageName(Stage.STAGE_LEARN).toLowerCase());
    let manifest: StageManifest;
    try {
      manifest = JSON.parse(await fs.promises.readFile(path.join(dir, STAGE_MANIFEST), 'utf8')) as StageManifest;
    } catch {
      continue; // no finished LEARN in that round (a configuration without one, or a round still to come)
    }
    const already = prunedOutputs(dir);
    const targets = PRUNABLE_OUTPUTS.flatMap((name) => {
      const where = already.has(name) ? undefined : deletableOutput(manifest.outputs?.[name]?.uri, dir);
      return where ? [{ name, ...where }] : [];
    });
    if (targets.length === 0) continue;
    const names = [...already, ...targets.map((t) => t.name)].sort();
    await writeFileAtomic(path.join(dir, PRUNED_FILE), JSON.stringify({ outputs: names }, null, 2) + '\n');
    for (const target of targets) {
      // An S3 failure here does not fail the run: its objects stay behind (the manifest goes first, so a reader sees
      // at most a whole model or an absent one); DeleteRun, or a lifecycle rule on the bucket, removes them later.
      freed += await deleteOutput(target).catch((error: unknown) => {
        if ('s3' in target) return 0;
        throw error;
      });
    }
  }
  return freed;
}

/** Where a stage output may be deleted: a local path inside the stage's directory, or an s3:// URI this coordinator may write. */
type Deletable = { local: string } | { s3: string };

function deletableOutput(uri: string | undefined, stageDir: string): Deletable | undefined {
  if (!uri) return undefined;
  if (isS3Uri(uri)) {
    try {
      confineS3Uri(uri, 'keep_last_checkpoints', 'write');
      return { s3: uri };
    } catch {
      return undefined; // outside S3_ARTIFACT_ROOTS: not this coordinator's to delete
    }
  }
  const local = localOutputPath(uri, stageDir);
  return local ? { local } : undefined;
}

/** Deletes one output; returns the bytes it held. */
async function deleteOutput(target: Deletable): Promise<number> {
  if ('s3' in target) return deleteS3Artifact(target.s3, 'keep_last_checkpoints');
  const bytes = diskBytes(target.local);
  await fs.promises.rm(target.local, { recursive: true, force: true });
  return bytes;
}

/**
 * The s3:// model checkpoints and exports the LEARN stages under `runDir` recorded (round-N/learn/stage.json), pruned
 * ones included (absent already, or left behind by a failed deletion). Only these: they are always the trainer
 * job's own products, never a spec input.
 */
async function s3Models(runDir: string): Promise<string[]> {
  const uris: string[] = [];
  for (const round of await fs.promises.readdir(runDir).catch(() => [] as string[])) {
    if (!/^round-\d+$/.test(round)) continue;
    const dir = path.join(runDir, round, stageName(Stage.STAGE_LEARN).toLowerCase());
    let manifest: StageManifest;
    try {
      manifest = JSON.parse(await fs.promises.readFile(path.join(dir, STAGE_MANIFEST), 'utf8')) as StageManifest;
    } catch {
      continue;
    }
    for (const name of PRUNABLE_OUTPUTS) {
      const where = deletableOutput(manifest.outputs?.[name]?.uri, dir);
      if (where && 's3' in where) uris.push(where.s3);
    }
  }
  return uris;
}

/** The local path of a stage output's file:// URI, only if it lies inside the stage's directory (never anything else). */
function localOutputPath(uri: string, stageDir: string): string | undefined {
  if (!uri.startsWith('file://')) return undefined;
  const local = decodeURIComponent(new URL(uri).pathname);
  return local.startsWith(stageDir + path.sep) ? local : undefined;
}

/** Removes a run's s3:// models (s3Models, where this coordinator may write), then its directory; returns the bytes they held. */
export async function removeRunDir(runDir: string): Promise<number> {
  let bytes = 0;
  for (const uri of await s3Models(runDir)) bytes += await deleteS3Artifact(uri, 'run_id');
  bytes += diskBytes(runDir);
  await fs.promises.rm(runDir, { recursive: true, force: true });
  return bytes;
}

/** DeleteRun refuses a run that is executing (RUNNING or PENDING): FailedPreconditionError, cancel it first. */
export function checkDeletable(runId: string, state: JobState, executing: boolean): void {
  if (executing || state === JobState.JOB_STATE_RUNNING || state === JobState.JOB_STATE_PENDING) {
    throw new FailedPreconditionError(`run '${runId}' is ${JobState[state].replace('JOB_STATE_', '')}: cancel it first (CancelRun)`);
  }
}
