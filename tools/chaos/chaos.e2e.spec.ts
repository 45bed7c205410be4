import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, groupAlive } from '../stack/harness';
import { describeFault, planFaults } from './plan';

/**
 * `npm run chaos -- --runs 2` as CI runs it: the five services by `npm run stack`, an undisturbed W-DRO micro run,
 * then two runs each disturbed by the fault the seed draws (seed "ci-783": a 12 s SIGSTOP of the DRO solver a third
 * into round 1's LEARN, past the trainer's retries, and a kill -9 of the trainer halfway through round 2's LEARN,
 * restarted); both heal by themselves, with the undisturbed run's outputs and metrics and no orphans. About 2 min on
 * 2 cores. Bad options exit 2 without starting anything.
 */
const TIMEOUT_MS = 8 * 60_000;
const SEED = 'ci-783';

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function chaos(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'chaos', '--', ...args], { cwd: ROOT, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run chaos', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-e2e-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('heals two disturbed runs by itself: SUCCEEDED, identical to the undisturbed run, no human step', async () => {
    const faults = planFaults(SEED, 2);
    const run = await chaos(['--runs', '2', '--seed', SEED, '--data-dir', dataDir]);
    const lines = run.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]);
    expect({ code: run.code, summary: { check: summary.check, runs: summary.runs, succeeded: summary.succeeded, identical: summary.identical, human_steps: summary.human_steps } }).toEqual({
      code: 0,
      summary: { check: 'chaos', runs: 2, succeeded: 2, identical: 2, human_steps: 0 },
    });
    // One line per run, naming its fault, as drawn from the seed.
    for (const fault of faults) {
      const line = run.stderr.split('\n').find((l) => l.startsWith(`[chaos] run ${fault.run}/2 chaos-${fault.run}: ${describeFault(fault)} (`));
      expect(line).toMatch(/ \(\d+ ms in, (mid-stage|after the stage)\): JOB_STATE_SUCCEEDED, automatic resumes \d+, [\d.]+ s, identical, no orphans$/);
    }
    expect(run.stderr.match(/identical, no orphans/g)).toHaveLength(2);
    expect(summary.restarts).toBe(faults.filter((f) => f.action === 'kill').length);
    // Every process group that served (the log names them, restarted ones too) is gone.
    const pids = new Set([...run.stderr.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])));
    expect(pids.size).toBe(5 + summary.restarts);
    expect([...pids].filter(groupAlive)).toEqual([]);
  }, TIMEOUT_MS);

  it('exits 2 naming a bad option, before starting anything', async () => {
    const bad = await chaos(['--runs', 'two']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--runs: expected an integer in [1, 1000], got 'two'");
    expect(bad.stdout).toBe('');
  }, 60_000);
});
