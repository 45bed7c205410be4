import * as fs from 'node:fs';
import * as path from 'node:path';
import { STAGE_MANIFEST } from './stage-manifest';

/** Per-shard files of GENERATE, JUDGE and EVALUATE (shards.ts); merged into the stage directory, then not needed. */
const WORK_DIR = 'work';
/** A trainer job's output directory (stages/learn.ts): attempt-<k>, and beside it a LEARN Job's work dir, .work. */
const ATTEMPT_DIR = /^attempt-(\d+)(\.work)?$/;
/** A temporary file of an atomic write that never committed (@alignment/artifacts: .<name>.tmp-<pid>-<hex>). */
const TEMP_FILE = /^\..+\.tmp-\d+-[0-9a-f]+$/;

/**
 * Readies a stage's directory for execution `attempt` (issue 12: orphan attempt-N directories, .tmp-* files and
 * shard copies piled up): removes the stage.json that did not verify, the shard work directory, the trainer output
 * of every other attempt, and temporary files left by writes that never finished. The current attempt's directory
 * stays: a coordinator that restarted mid-LEARN re-attaches to the trainer job writing there.
 */
export async function prepareStageDir(dir: string, attempt: number): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
  await fs.promises.rm(path.join(dir, STAGE_MANIFEST), { force: true });
  for (const entry of await fs.promises.readdir(dir)) {
    const other = ATTEMPT_DIR.exec(entry);
    if (entry === WORK_DIR || (other && Number(other[1]) !== attempt) || TEMP_FILE.test(entry)) {
      await fs.promises.rm(path.join(dir, entry), { recursive: true, force: true });
    }
  }
}

/** After the stage succeeded: its shard files, merged into its outputs. */
export async function removeStageWork(dir: string): Promise<void> {
  await fs.promises.rm(path.join(dir, WORK_DIR), { recursive: true, force: true });
}
