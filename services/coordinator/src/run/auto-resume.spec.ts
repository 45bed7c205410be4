// Self-healing runs (issue 12): a run whose stage was INTERRUPTED or whose service stayed UNAVAILABLE resumes by
// itself after a backoff, within a per-run budget that GetRun reports; a run left RUNNING with nothing executing it
// is picked up by the next tick; a fault outside any stage (the database) reaches onFatal.
import { Configuration, JobState } from '@alignment/contracts';
import { closeHarnesses, harness, runToEnd, stageRuns } from '../../testing/engine-harness';
import { backoffBefore, DEFAULT_AUTO_RESUME } from './auto-resume';
import { ServiceUnavailableError, StageFailedError } from './executors';
import { deriveSeed } from './seeds';

afterAll(closeHarnesses);

const quick = { budget: 2, backoffMs: 20, maxBackoffMs: 40 };

describe('automatic resumes', () => {
  it('resume a run whose trainer job was INTERRUPTED; the run succeeds and GetRun counts the resume', async () => {
    const h = harness(undefined, undefined, { autoResume: quick });
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 2) throw new StageFailedError('trainer job x was interrupted: no checkpoint', true);
    };
    const run = await runToEnd(h);
    expect([run.state, run.error, run.automaticResumes]).toEqual([JobState.JOB_STATE_SUCCEEDED, '', 1]);
    // The interrupted LEARN ran again as attempt 2; nothing before it was executed twice.
    const ids = h.fakes.learn.calls.map((c) => c.jobId.replace(/^run-1-[0-9a-f]{8}-/, ''));
    expect(ids).toEqual(['r0-learn-a1', 'r1-learn-a1', 'r1-learn-a2', 'r2-learn-a1']);
    expect(stageRuns(h.events).filter((s) => s === '1 STAGE_GENERATE')).toHaveLength(1);
    const notice = h.events.find((e) => e.kind === 'stage' && e.message.includes('resuming by itself'));
    expect(notice).toMatchObject({ state: JobState.JOB_STATE_FAILED });
    expect(notice && 'message' in notice ? notice.message : '').toMatch(
      /^round 1 LEARN: trainer job x was interrupted: no checkpoint; resuming by itself in 0 s \(automatic resume 1 of 2\)$/,
    );
  });

  it('resume a run whose service stayed UNAVAILABLE, and give up once the budget is spent', async () => {
    const h = harness(undefined, undefined, { autoResume: quick });
    let outage = 3; // calls that find the generator down
    h.fakes.generate.before = (r) => {
      if (r.params?.seed === deriveSeed(7, 1, 'GENERATE') && outage-- > 0) {
        throw new ServiceUnavailableError('generator', 'localhost:50052', 6, 'connect ECONNREFUSED');
      }
    };
    const failed = await runToEnd(h);
    expect([failed.state, failed.automaticResumes]).toEqual([JobState.JOB_STATE_FAILED, 2]);
    expect(failed.error).toBe('round 1 GENERATE: generator at localhost:50052 unavailable after 6 attempts: connect ECONNREFUSED');
    // StartRun by a person resumes it with a fresh budget; the generator is back by then.
    const resumed = await runToEnd(h);
    expect([resumed.state, resumed.automaticResumes]).toEqual([JobState.JOB_STATE_SUCCEEDED, 0]);
  });

  it('never resume a failure the same inputs would hit again', async () => {
    const h = harness(undefined, undefined, { autoResume: quick });
    h.fakes.learn.before = () => {
      throw new StageFailedError('trainer job x failed: loss is NaN');
    };
    const run = await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    expect([run.state, run.automaticResumes]).toEqual([JobState.JOB_STATE_FAILED, 0]);
    expect(h.fakes.learn.calls).toHaveLength(1);
  });

  it('wait longer before each resume, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffBefore(n, DEFAULT_AUTO_RESUME))).toEqual([5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
  });
});

describe('the resume tick', () => {
  it('picks up a run left RUNNING with nothing executing it', async () => {
    const h = harness();
    h.fakes.learn.before = (_id, _spec, call) => {
      if (call === 1) throw new Error('boom outside the stage contract');
    };
    // An execution that crashes after recording RUNNING: simulated by a run the store says is RUNNING while the
    // engine has no execution for it (as when an execution died on an unexpected error before recording its end).
    const first = await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    expect(first.state).toBe(JobState.JOB_STATE_FAILED);
    h.store.setRunState('run-1', JobState.JOB_STATE_RUNNING);
    h.fakes.learn.before = undefined;
    h.engine.startTicking(20);
    const deadline = Date.now() + 10_000;
    while (h.engine.getRun('run-1').state === JobState.JOB_STATE_RUNNING) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(h.engine.getRun('run-1').state).toBe(JobState.JOB_STATE_SUCCEEDED);
    await h.engine.stop();
  });

  it('hands a fault outside any stage (the database cannot be written) to onFatal', async () => {
    const fatal: unknown[] = [];
    const h = harness(undefined, undefined, { onFatal: (e) => fatal.push(e) });
    const setRunPosition = h.store.setRunPosition.bind(h.store);
    h.store.setRunPosition = () => {
      throw Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY' });
    };
    await h.engine.startRun({ runId: 'ro', spec: (await import('../../testing/run-fixtures')).validSpec(h.ws, {}) });
    await h.engine.settled('ro');
    expect(fatal).toHaveLength(1);
    expect((fatal[0] as Error).message).toBe('attempt to write a readonly database');
    h.store.setRunPosition = setRunPosition;
  });
});

describe('the run database', () => {
  it('gains the automatic-resume count when a version-1 database is opened', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const Database = (await import('better-sqlite3')).default;
    const { RunStore } = await import('./store');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runs-v1-'));
    try {
      const file = path.join(dir, 'runs.sqlite');
      const v1 = new Database(file);
      v1.exec(`CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
        spec BLOB NOT NULL, request_spec BLOB NOT NULL, state INTEGER NOT NULL, current_round INTEGER NOT NULL DEFAULT 0,
        current_stage INTEGER NOT NULL DEFAULT 0, latest_model BLOB, error TEXT NOT NULL DEFAULT '', trace_id TEXT NOT NULL,
        root_span_id TEXT NOT NULL, nonce TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
      v1.prepare(`INSERT INTO runs (run_id, name, spec, request_spec, state, trace_id, root_span_id, nonce, created_at, updated_at)
        VALUES ('old', 'old', x'', x'', ?, 't', 's', 'n', 1, 1)`).run(JobState.JOB_STATE_SUCCEEDED);
      v1.pragma('user_version = 1');
      v1.close();
      const store = RunStore.open(file);
      expect(store.findRun('old')?.autoResumes).toBe(0);
      store.setAutoResumes('old', 2);
      expect(store.toRun(store.findRun('old')!).automaticResumes).toBe(2);
      store.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
