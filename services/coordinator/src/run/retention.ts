import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@alignment/artifacts';
import { JobState, Stage } from '@alignment/contracts';
import { FailedPreconditionError } from '@alignment/errors';
import type { PlannedStage } from './plan';
import { PRUNED_FILE, prunedOutputs, STAGE_MANIFEST, stageName, type StageManifest } from './stage-manifest';

/**
 * Disk use and retention of a run's directory ($DATA_DIR/runs/<run_id>): the bytes GetRun reports (Run.disk_bytes),
 * the pruning of old rounds' model checkpoints and exports (RunSpec.keep_last_checkpoints), and DeleteRun's removal.
 */

/** The LEARN outputs retention deletes: the model checkpoint and its ONNX export (directories). */
export const PRUNABLE_OUTPUTS = ['model.hf_checkpoint', 'model.onnx'] as const;
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
 * execute those stages again. The last round's model is never pruned (only rounds before `round` are). Returns the
 * bytes freed. K = 0 keeps everything.
 */
export async function pruneCheckpoints(runDir: string, keepLast: number, round: number): Promise<number> {
  if (keepLast <= 0) return 0;
  let freed = 0;
  for (let old = round - keepLast; old >= 0; old -= 1) {
    const dir = path.join(runDir, `round-${old}`, stageName(Stage.STAGE_LEARN).toLowerCase());
    let manifest: StageManifest;
    try {
      manifest = JSON.parse(await fs.promises.readFile(path.join(dir, STAGE_MANIFEST), 'utf8')) as StageManifest;
    } catch {
      continue; // no finished LEARN in that round (a configuration without one, or a round still to come)
    }
    const already = prunedOutputs(dir);
    const targets = PRUNABLE_OUTPUTS.flatMap((name) => {
      const local = !already.has(name) && manifest.outputs?.[name] ? localOutputPath(manifest.outputs[name].uri, dir) : undefined;
      return local ? [{ name, local }] : [];
    });
    if (targets.length === 0) continue;
    const names = [...already, ...targets.map((t) => t.name)].sort();
    await writeFileAtomic(path.join(dir, PRUNED_FILE), JSON.stringify({ outputs: names }, null, 2) + '\n');
    for (const { local } of targets) {
      freed += diskBytes(local);
      await fs.promises.rm(local, { recursive: true, force: true });
    }
  }
  return freed;
}

/** The local path of a stage output's file:// URI, only if it lies inside the stage's directory (never anything else). */
function localOutputPath(uri: string, stageDir: string): string | undefined {
  if (!uri.startsWith('file://')) return undefined;
  const local = decodeURIComponent(new URL(uri).pathname);
  return local.startsWith(stageDir + path.sep) ? local : undefined;
}

/** Removes a run's directory; returns the bytes it held. */
export async function removeRunDir(runDir: string): Promise<number> {
  const bytes = diskBytes(runDir);
  await fs.promises.rm(runDir, { recursive: true, force: true });
  return bytes;
}

/** DeleteRun refuses a run that is executing (RUNNING or PENDING): FailedPreconditionError, cancel it first. */
export function checkDeletable(runId: string, state: JobState, executing: boolean): void {
  if (executing || state === JobState.JOB_STATE_RUNNING || state === JobState.JOB_STATE_PENDING) {
    throw new FailedPreconditionError(`run '${runId}' is ${JobState[state].replace('JOB_STATE_', '')}: cancel it first (CancelRun)`);
  }
}
