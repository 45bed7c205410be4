import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { JobState, ModelRef, RunSpec, Stage, type ArtifactRef, type Run, type RoundMetrics, type StageRecord } from '@alignment/contracts';

/**
 * The durable state of every run, in SQLite (WAL, synchronous=FULL: a committed transition survives kill -9 and
 * power loss). Together with the atomically written artifacts it is the whole truth a restarted coordinator
 * resumes from; nothing about a run lives only in memory.
 */
const SCHEMA_VERSION = 4;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order; ListRuns pages by it
  run_id         TEXT NOT NULL UNIQUE,
  name           TEXT NOT NULL,
  spec           BLOB NOT NULL,     -- RunSpec as validated, inputs pinned (sha256, absolute URIs)
  request_spec   BLOB NOT NULL,     -- RunSpec as the client sent it: StartRun's idempotency check
  state          INTEGER NOT NULL,  -- JobState
  current_round  INTEGER NOT NULL DEFAULT 0,
  current_stage  INTEGER NOT NULL DEFAULT 0,
  latest_model   BLOB,              -- ModelRef of the last finished LEARN
  error          TEXT NOT NULL DEFAULT '',
  trace_id       TEXT NOT NULL,     -- the run's trace; resumed executions continue it
  root_span_id   TEXT NOT NULL,
  nonce          TEXT NOT NULL,     -- makes trainer job ids unique across coordinators reusing a run_id
  auto_resumes   INTEGER NOT NULL DEFAULT 0,  -- automatic resumes since the last StartRun (auto-resume.ts)
  owner          TEXT NOT NULL DEFAULT '',    -- the principal that started it ('' without authentication)
  object_store_bytes INTEGER NOT NULL DEFAULT 0,  -- Run.object_store_bytes as last listed (run-resources.ts)
  created_at     INTEGER NOT NULL,  -- ms since the epoch
  updated_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stages (
  run_id          TEXT NOT NULL REFERENCES runs(run_id),
  round           INTEGER NOT NULL,
  stage           INTEGER NOT NULL,  -- Stage
  state           INTEGER NOT NULL,  -- JobState
  attempt         INTEGER NOT NULL,  -- executions that did not resume an in-flight one; part of the trainer job id
  outputs         TEXT NOT NULL DEFAULT '[]',  -- JSON [ArtifactRef]
  manifest_sha256 TEXT NOT NULL DEFAULT '',    -- of the stage's stage.json
  started_at      INTEGER,
  finished_at     INTEGER,
  error           TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, round, stage)
);
CREATE TABLE IF NOT EXISTS metrics (
  run_id  TEXT NOT NULL REFERENCES runs(run_id),
  round   INTEGER NOT NULL,
  name    TEXT NOT NULL,
  value   REAL NOT NULL,
  PRIMARY KEY (run_id, round, name)
);
`;

export interface RunRow {
  seq: number;
  runId: string;
  name: string;
  spec: RunSpec;
  requestSpec: Buffer;
  state: JobState;
  currentRound: number;
  currentStage: Stage;
  latestModel?: ModelRef;
  error: string;
  traceId: string;
  rootSpanId: string;
  nonce: string;
  autoResumes: number;
  owner: string;
  objectStoreBytes: number;
  createdAt: number;
  updatedAt: number;
}

export interface StageRow {
  runId: string;
  round: number;
  stage: Stage;
  state: JobState;
  attempt: number;
  outputs: ArtifactRef[];
  manifestSha256: string;
  startedAt?: number;
  finishedAt?: number;
  error: string;
}

export interface NewRun {
  runId: string;
  spec: RunSpec;
  requestSpec: Buffer;
  traceId: string;
  rootSpanId: string;
  nonce: string;
  /** The principal that starts it; '' without authentication. */
  owner?: string;
}

interface RawRun {
  seq: number;
  run_id: string;
  name: string;
  spec: Buffer;
  request_spec: Buffer;
  state: number;
  current_round: number;
  current_stage: number;
  latest_model: Buffer | null;
  error: string;
  trace_id: string;
  root_span_id: string;
  nonce: string;
  auto_resumes: number;
  owner: string;
  object_store_bytes: number;
  created_at: number;
  updated_at: number;
}

interface RawStage {
  run_id: string;
  round: number;
  stage: number;
  state: number;
  attempt: number;
  outputs: string;
  manifest_sha256: string;
  started_at: number | null;
  finished_at: number | null;
  error: string;
}

const TERMINAL: ReadonlySet<JobState> = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_INTERRUPTED]);

/** SUCCEEDED, FAILED, CANCELLED and INTERRUPTED: the run is not executing (the last three can be resumed). */
export function isTerminal(state: JobState): boolean {
  return TERMINAL.has(state);
}

export class RunStore {
  private constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  /** Opens (creating if needed) the database at `file`. */
  static open(file: string, now: () => number = Date.now): RunStore {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`${file} has schema version ${version}; this coordinator knows ${SCHEMA_VERSION}`);
    db.exec(SCHEMA);
    // Version 1 had no auto_resumes (CREATE TABLE IF NOT EXISTS leaves an existing table as it was).
    if (version === 1) db.exec('ALTER TABLE runs ADD COLUMN auto_resumes INTEGER NOT NULL DEFAULT 0');
    if (version >= 1 && version < 3) db.exec("ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''");
    if (version >= 1 && version < 4) db.exec('ALTER TABLE runs ADD COLUMN object_store_bytes INTEGER NOT NULL DEFAULT 0');
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return new RunStore(db, now);
  }

  close(): void {
    this.db.close();
  }

  createRun(run: NewRun): void {
    const now = this.now();
    this.db
      .prepare(
        `INSERT INTO runs (run_id, name, spec, request_spec, state, trace_id, root_span_id, nonce, owner, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(run.runId, run.spec.name, Buffer.from(RunSpec.encode(run.spec).finish()), run.requestSpec, JobState.JOB_STATE_RUNNING,
        run.traceId, run.rootSpanId, run.nonce, run.owner ?? '', now, now);
  }

  findRun(runId: string): RunRow | undefined {
    const raw = this.db.prepare('SELECT * FROM runs WHERE run_id = ?').get(runId) as RawRun | undefined;
    return raw && toRunRow(raw);
  }

  /** Runs created after `afterSeq`, oldest first; only `owner`'s when given. */
  listRuns(afterSeq: number, limit: number, owner?: string): RunRow[] {
    const rows =
      owner === undefined
        ? this.db.prepare('SELECT * FROM runs WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit)
        : this.db.prepare('SELECT * FROM runs WHERE seq > ? AND owner = ? ORDER BY seq LIMIT ?').all(afterSeq, owner, limit);
    return (rows as RawRun[]).map(toRunRow);
  }

  runIdsInState(states: readonly JobState[]): string[] {
    const marks = states.map(() => '?').join(', ');
    return (this.db.prepare(`SELECT run_id FROM runs WHERE state IN (${marks}) ORDER BY seq`).all(...states) as Array<{ run_id: string }>).map(
      (r) => r.run_id,
    );
  }

  /** Moves a run to `state` if it is in one of `allowedFrom` (any state when omitted); false when it was not. */
  setRunState(runId: string, state: JobState, options: { error?: string; allowedFrom?: readonly JobState[] } = {}): boolean {
    const allowed = options.allowedFrom;
    const guard = allowed ? ` AND state IN (${allowed.map(() => '?').join(', ')})` : '';
    const result = this.db
      .prepare(`UPDATE runs SET state = ?, error = ?, updated_at = ? WHERE run_id = ?${guard}`)
      .run(state, options.error ?? '', this.now(), runId, ...(allowed ?? []));
    return result.changes === 1;
  }

  setAutoResumes(runId: string, count: number): void {
    this.db.prepare('UPDATE runs SET auto_resumes = ?, updated_at = ? WHERE run_id = ?').run(count, this.now(), runId);
  }

  setRunPosition(runId: string, round: number, stage: Stage): void {
    this.db.prepare('UPDATE runs SET current_round = ?, current_stage = ?, updated_at = ? WHERE run_id = ?').run(round, stage, this.now(), runId);
  }

  setLatestModel(runId: string, model: ModelRef): void {
    this.db.prepare('UPDATE runs SET latest_model = ?, updated_at = ? WHERE run_id = ?').run(Buffer.from(ModelRef.encode(model).finish()), this.now(), runId);
  }

  /** Run.object_store_bytes as just listed; a measurement, so updated_at stays. */
  setObjectStoreBytes(runId: string, bytes: number): void {
    this.db.prepare('UPDATE runs SET object_store_bytes = ? WHERE run_id = ?').run(bytes, runId);
  }

  /** Removes a run's records (its metrics and stages, then the run) in one transaction; false when there was none. */
  deleteRun(runId: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM metrics WHERE run_id = ?').run(runId);
      this.db.prepare('DELETE FROM stages WHERE run_id = ?').run(runId);
      return this.db.prepare('DELETE FROM runs WHERE run_id = ?').run(runId).changes === 1;
    })();
  }

  getStage(runId: string, round: number, stage: Stage): StageRow | undefined {
    const raw = this.db.prepare('SELECT * FROM stages WHERE run_id = ? AND round = ? AND stage = ?').get(runId, round, stage) as RawStage | undefined;
    return raw && toStageRow(raw);
  }

  stagesOf(runId: string): StageRow[] {
    return (this.db.prepare('SELECT * FROM stages WHERE run_id = ? ORDER BY round, stage').all(runId) as RawStage[]).map(toStageRow);
  }

  /**
   * Marks a stage RUNNING and returns its attempt number. A stage found RUNNING was in flight when a coordinator
   * died: it keeps its attempt, so the trainer job it started is re-attached under the same job id. Any other
   * earlier state (FAILED, CANCELLED, or SUCCEEDED whose output no longer verifies) starts a new attempt.
   */
  startStage(runId: string, round: number, stage: Stage): number {
    // BEGIN IMMEDIATE, as in finishStage: a read-then-write transaction that began DEFERRED would meet another
    // writer with SQLITE_BUSY at its first write, which busy_timeout cannot wait out.
    return this.db.transaction(() => {
      const previous = this.getStage(runId, round, stage);
      const attempt = !previous ? 1 : previous.state === JobState.JOB_STATE_RUNNING ? previous.attempt : previous.attempt + 1;
      this.db
        .prepare(
          `INSERT INTO stages (run_id, round, stage, state, attempt, started_at, finished_at, error, outputs, manifest_sha256)
           VALUES (?, ?, ?, ?, ?, ?, NULL, '', '[]', '')
           ON CONFLICT (run_id, round, stage) DO UPDATE SET state = excluded.state, attempt = excluded.attempt,
             started_at = excluded.started_at, finished_at = NULL, error = '', outputs = '[]', manifest_sha256 = ''`,
        )
        .run(runId, round, stage, JobState.JOB_STATE_RUNNING, attempt, this.now());
      return attempt;
    }).immediate();
  }

  /** Ends a stage; with SUCCEEDED, its outputs, manifest and metrics are recorded in the same transaction. */
  finishStage(
    runId: string,
    round: number,
    stage: Stage,
    end: { state: JobState; outputs?: ArtifactRef[]; manifestSha256?: string; error?: string; metrics?: Record<string, number> },
  ): void {
    this.db.transaction(() => {
      const now = this.now();
      const existing = this.getStage(runId, round, stage);
      if (!existing) {
        this.db
          .prepare(`INSERT INTO stages (run_id, round, stage, state, attempt, started_at) VALUES (?, ?, ?, ?, 0, ?)`)
          .run(runId, round, stage, end.state, now);
      }
      this.db
        .prepare(
          `UPDATE stages SET state = ?, outputs = ?, manifest_sha256 = ?, error = ?, finished_at = ?
           WHERE run_id = ? AND round = ? AND stage = ?`,
        )
        .run(end.state, JSON.stringify(end.outputs ?? []), end.manifestSha256 ?? '', end.error ?? '', now, runId, round, stage);
      const upsert = this.db.prepare(
        'INSERT INTO metrics (run_id, round, name, value) VALUES (?, ?, ?, ?) ON CONFLICT (run_id, round, name) DO UPDATE SET value = excluded.value',
      );
      for (const [name, value] of Object.entries(end.metrics ?? {})) {
        if (Number.isFinite(value)) upsert.run(runId, round, name, value);
      }
      this.db.prepare('UPDATE runs SET updated_at = ? WHERE run_id = ?').run(now, runId);
    }).immediate();
  }

  metricsOf(runId: string): RoundMetrics[] {
    const rows = this.db.prepare('SELECT round, name, value FROM metrics WHERE run_id = ? ORDER BY round, name').all(runId) as Array<{
      round: number;
      name: string;
      value: number;
    }>;
    const byRound = new Map<number, Record<string, number>>();
    for (const row of rows) {
      const metrics = byRound.get(row.round) ?? {};
      metrics[row.name] = row.value;
      byRound.set(row.round, metrics);
    }
    return [...byRound.entries()].map(([round, metrics]) => ({ round, metrics }));
  }

  /** The run as the API returns it. */
  toRun(row: RunRow): Run {
    const stages: StageRecord[] = this.stagesOf(row.runId).map((s) => ({
      round: s.round,
      stage: s.stage,
      state: s.state,
      outputs: s.outputs,
      startedAt: s.startedAt !== undefined ? new Date(s.startedAt) : undefined,
      finishedAt: s.finishedAt !== undefined ? new Date(s.finishedAt) : undefined,
      error: s.error,
    }));
    return {
      runId: row.runId,
      spec: row.spec,
      state: row.state,
      currentRound: row.currentRound,
      currentStage: row.currentStage,
      stages,
      rounds: this.metricsOf(row.runId),
      latestModel: row.latestModel,
      error: row.error,
      createdAt: new Date(row.createdAt),
      updatedAt: new Date(row.updatedAt),
      traceId: row.traceId,
      automaticResumes: row.autoResumes,
      owner: row.owner,
      diskBytes: 0, // the engine measures the run's directory (RunEngine.getRun)
      objectStoreBytes: row.objectStoreBytes,
    };
  }
}

function toRunRow(raw: RawRun): RunRow {
  return {
    seq: raw.seq,
    runId: raw.run_id,
    name: raw.name,
    spec: RunSpec.decode(raw.spec),
    requestSpec: raw.request_spec,
    state: raw.state as JobState,
    currentRound: raw.current_round,
    currentStage: raw.current_stage as Stage,
    latestModel: raw.latest_model ? ModelRef.decode(raw.latest_model) : undefined,
    error: raw.error,
    traceId: raw.trace_id,
    rootSpanId: raw.root_span_id,
    nonce: raw.nonce,
    autoResumes: raw.auto_resumes,
    owner: raw.owner,
    objectStoreBytes: raw.object_store_bytes,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
  };
}

function toStageRow(raw: RawStage): StageRow {
  return {
    runId: raw.run_id,
    round: raw.round,
    stage: raw.stage as Stage,
    state: raw.state as JobState,
    attempt: raw.attempt,
    outputs: JSON.parse(raw.outputs) as ArtifactRef[],
    manifestSha256: raw.manifest_sha256,
    startedAt: raw.started_at ?? undefined,
    finishedAt: raw.finished_at ?? undefined,
    error: raw.error,
  };
}
