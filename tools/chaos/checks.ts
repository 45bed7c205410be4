/**
 * What `npm run chaos` checks of a finished run, from its files and the coordinator's database: the outputs of every
 * stage (sha256, as stage.json records them and as they re-hash on disk now), the metrics, the stages and metric
 * rows the database holds, and what is left in the stage directories that the run no longer needs (orphans).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { sha256File, toLocalPath, verifyArtifact } from '@alignment/artifacts';
import { Stage } from '@alignment/contracts';

/** A temporary file of an atomic write that never committed (@alignment/artifacts: .<name>.tmp-<pid>-<hex>). */
const TEMP_FILE = /^\..+\.tmp-\d+-[0-9a-f]+$/;
const ATTEMPT_DIR = /^attempt-(\d+)$/;
const ROUND_DIR = /^round-\d+$/;

interface StageJson {
  round: number;
  stage: string;
  attempt: number;
  outputs: Record<string, { uri: string; sha256: string; kind: 'file' | 'dir' }>;
  metrics: Record<string, number | null>;
}

export interface RunSnapshot {
  /** "<round>/<stage>/<output>" -> sha256, re-hashed from the files. */
  outputs: Record<string, string>;
  /** "<round>/<name>" -> value, from the database's metrics table. */
  metrics: Record<string, number>;
  /** "<round> <STAGE> <state>" per stages row, sorted. */
  stages: string[];
  /** "<round> <STAGE>" -> how long the stage took (ms), from the database's stages rows. */
  durationsMs: Record<string, number>;
  /** Problems found in the run's own files: an output that does not re-hash, a stage without stage.json. */
  problems: string[];
  /** Paths (relative to the run directory) the run left behind: work/, .tmp-*, attempt-N of no stage.json. */
  orphans: string[];
}

/** Whether each output still re-hashes to what stage.json records: a file itself, a directory through its manifest.json. */
async function rehash(output: { uri: string; sha256: string; kind: 'file' | 'dir' }): Promise<string | undefined> {
  const local = toLocalPath(output.uri);
  if (output.kind === 'file') {
    const actual = await sha256File(local).catch(() => 'missing');
    return actual === output.sha256 ? undefined : `${local}: sha256 ${actual}, stage.json records ${output.sha256}`;
  }
  return verifyArtifact(local, output.sha256).then(
    () => undefined,
    (error: Error) => error.message,
  );
}

function walk(dir: string, relative = ''): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
    const rel = path.join(relative, entry.name);
    out.push(rel);
    if (entry.isDirectory()) out.push(...walk(dir, rel));
  }
  return out;
}

/** The orphans under a run directory, given the attempt each stage's stage.json names. */
export function findOrphans(runDir: string, attempts: Map<string, number>): string[] {
  return walk(runDir).filter((rel) => {
    const name = path.basename(rel);
    if (TEMP_FILE.test(name)) return true;
    const parts = rel.split(path.sep);
    // round-<t>/<stage>/work and round-<t>/<stage>/attempt-<k> (only the attempt the manifest names stays).
    if (parts.length !== 3) return false;
    if (name === 'work') return true;
    const attempt = ATTEMPT_DIR.exec(name);
    return attempt !== null && attempts.get(`${parts[0]}/${parts[1]}`) !== Number(attempt[1]);
  });
}

export async function snapshotRun(dataDir: string, runId: string): Promise<RunSnapshot> {
  const runDir = path.join(dataDir, 'runs', runId);
  const snapshot: RunSnapshot = { outputs: {}, metrics: {}, stages: [], durationsMs: {}, problems: [], orphans: [] };
  const attempts = new Map<string, number>();
  // Only the round directories hold stages: a run directory also has the coordinator's TensorBoard events
  // (coordinator/) and, with a retention policy, its pruned.json marker.
  const rounds = fs.readdirSync(runDir).filter((name) => ROUND_DIR.test(name) && fs.statSync(path.join(runDir, name)).isDirectory());
  for (const round of rounds.sort()) {
    for (const stage of fs.readdirSync(path.join(runDir, round)).sort()) {
      const file = path.join(runDir, round, stage, 'stage.json');
      if (!fs.existsSync(file)) {
        snapshot.problems.push(`${round}/${stage} has no stage.json`);
        continue;
      }
      const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as StageJson;
      attempts.set(`${round}/${stage}`, manifest.attempt);
      for (const [name, output] of Object.entries(manifest.outputs)) {
        const problem = await rehash(output);
        if (problem) snapshot.problems.push(`${round}/${stage}/${name}: ${problem}`);
        snapshot.outputs[`${round}/${stage}/${name}`] = output.sha256;
      }
    }
  }
  snapshot.orphans = findOrphans(runDir, attempts);
  const db = new Database(path.join(dataDir, 'coordinator', 'runs.sqlite'), { readonly: true, fileMustExist: true });
  try {
    for (const row of db.prepare('SELECT round, name, value FROM metrics WHERE run_id = ? ORDER BY round, name').all(runId) as Array<{ round: number; name: string; value: number }>) {
      snapshot.metrics[`${row.round}/${row.name}`] = row.value;
    }
    const rows = db.prepare('SELECT round, stage, state, started_at, finished_at FROM stages WHERE run_id = ? ORDER BY round, stage').all(runId) as Array<{
      round: number;
      stage: number;
      state: number;
      started_at: number | null;
      finished_at: number | null;
    }>;
    snapshot.stages = rows.map((r) => `${r.round} ${r.stage} ${r.state}`);
    for (const r of rows) {
      if (r.started_at !== null && r.finished_at !== null) snapshot.durationsMs[`${r.round} ${Stage[r.stage].replace(/^STAGE_/, '')}`] = r.finished_at - r.started_at;
    }
  } finally {
    db.close();
  }
  return snapshot;
}

/** What differs between a disturbed run and the reference: [] when identical. */
export function differences(reference: RunSnapshot, run: RunSnapshot): string[] {
  const diffs: string[] = [];
  // Every metric exactly: the run's metrics are all of the data (no wall-clock time among them).
  const compare = (what: string, a: Record<string, string | number>, b: Record<string, string | number>) => {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!(key in b)) diffs.push(`${what} ${key} lost`);
      else if (!(key in a)) diffs.push(`${what} ${key} extra`);
      else if (a[key] !== b[key]) diffs.push(`${what} ${key}: ${b[key]}, undisturbed ${a[key]}`);
    }
  };
  compare('output', reference.outputs, run.outputs);
  compare('metric', reference.metrics, run.metrics);
  if (JSON.stringify(reference.stages) !== JSON.stringify(run.stages)) diffs.push(`stages rows [${run.stages.join(', ')}], undisturbed [${reference.stages.join(', ')}]`);
  return diffs;
}
