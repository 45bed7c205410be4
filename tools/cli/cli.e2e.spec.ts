/**
 * End to end: the real `npx alignment` (the root package.json's bin, run from the repo root as a user runs it)
 * against `npm run stack` on free ports with a temporary DATA_DIR (tools/stack/harness.ts). `init` writes the
 * commented micro run; a run file with a bad field exits 2 naming it and starts nothing; `run -f
 * examples/micro-run.yaml --wait` (its inputs found through $DATA_DIR) ends SUCCEEDED with exit 0 and the metrics
 * table; get, ls and logs print what the coordinator has (`--output json` parses); `run --wait` of a run cancelled
 * meanwhile exits 1.
 *
 * Cost (2 cores): ~30-60 s for the stack to build the micro inputs and listen, ~15 s for the micro run, 1-3 s per
 * CLI call (tsx; npx adds about a second): about 1.5 min, 5 min at most.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from '@alignment/service-kit/testing';
import { ROOT, startStack, stopStack, type Stack } from '../stack/harness';

jest.setTimeout(300_000);

const BIN = path.join(ROOT, 'tools/cli/bin/alignment.js');
let dataDir: string;
let stack: Stack | undefined;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `npx alignment ARGS` from the repo root, the coordinator and DATA_DIR from the environment. `direct`: the bin
 * itself (tools/cli/bin/alignment.js, what npx runs), a second less per call, for the calls after the first few.
 */
function alignment(args: string[], { timeoutMs = 60_000, direct = false } = {}): Promise<Result> {
  const env = { ...process.env, ALIGNMENT_COORDINATOR: stack!.address('coordinator'), DATA_DIR: dataDir };
  const [command, argv] = direct ? [process.execPath, [BIN, ...args]] : ['npx', ['alignment', ...args]];
  return new Promise((resolve) => {
    execFile(command, argv, { cwd: ROOT, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}
const direct = (args: string[]) => alignment(args, { direct: true });

/** A result, for a failure message that shows what the command printed. */
const shown = (r: Result) => ({ code: r.code, stdout: r.stdout, stderr: r.stderr.slice(-3000) });

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-e2e-'));
  stack = await startStack(dataDir);
});

afterAll(async () => {
  if (stack) await stopStack(stack);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('init writes the commented micro run, which validates against the stack’s inputs, and never overwrites', async () => {
  const file = path.join(dataDir, 'run.yaml');
  const init = await alignment(['init', file]);
  expect(shown(init)).toMatchObject({ code: 0, stdout: `${file}\n` });
  expect(fs.readFileSync(file, 'utf8')).toMatch(/^# A run file for the CLI/);
  const again = await direct(['init', file]);
  expect(shown(again)).toMatchObject({ code: 2, stderr: expect.stringContaining('exists; not overwritten') });

  // --dry-run: checked by the coordinator's validateSpec here (every input file read), nothing started.
  const dry = await direct(['run', '-f', file, '--dry-run']);
  expect(shown(dry)).toMatchObject({ code: 0 });
  const request = JSON.parse(dry.stdout);
  expect(request.runId).toBe('micro');
  expect(request.spec.seedPairs.uri).toBe(path.join(dataDir, 'micro/seed_pairs.conversational.jsonl'));
});

test('a run file with a bad field exits 2 naming it, and starts no run', async () => {
  const example = fs.readFileSync(path.join(ROOT, 'examples/micro-run.yaml'), 'utf8');
  const file = path.join(dataDir, 'bad-beta.yaml');
  fs.writeFileSync(file, example.replace('beta: 0.1 ', 'beta: -1  '));
  const bad = await alignment(['run', '-f', file, '--wait']);
  expect(shown(bad)).toEqual({ code: 2, stdout: '', stderr: `alignment: ${file}: invalid spec.loss.beta: must be greater than 0, got -1\n` });
  const listed = await direct(['ls', '--output', 'json']);
  expect(shown(listed)).toMatchObject({ code: 0 });
  expect(JSON.parse(listed.stdout)).toEqual([]);
  // A usage mistake is exit 2 as well.
  expect(shown(await direct(['run', '-f', file, '--wiat']))).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown option '--wiat'") });
});

test('run -f examples/micro-run.yaml --wait follows the micro run to SUCCEEDED, exit 0, and prints the metrics table', async () => {
  const result = await alignment(['run', '-f', 'examples/micro-run.yaml', '--wait'], { timeoutMs: 180_000 });
  expect(shown(result)).toMatchObject({ code: 0 });
  const lines = result.stdout.trimEnd().split('\n');
  expect(lines.slice(0, 2)).toEqual(['micro', 'run micro SUCCEEDED']);
  expect(lines[2]).toMatch(/^round {2}eval\/win_rate \[95% CI\] {2}eval\/lc_win_rate {2}judge\/self_label_accuracy/);
  expect(lines.slice(3).map((l) => l.trim().split(/\s+/)[0])).toEqual(['0', '1', '2']);
  for (const row of lines.slice(3)) expect(row).toMatch(/\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]/); // win rate and its interval
  // Progress went to stderr as plain lines (not a terminal): every stage of the run, and each round's metrics.
  expect(result.stderr).not.toContain('\x1b[');
  for (const stage of ['round 0 LEARN', 'round 0 EVALUATE', 'round 1 GENERATE', 'round 1 JUDGE', 'round 2 EVALUATE']) {
    expect(result.stderr).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d\\] ${stage} succeeded`, 'm'));
  }
  expect(result.stderr).toMatch(/^\[\d\d:\d\d\] round 2: eval\/win_rate /m);
});

test('get, ls and logs show the run (--output json parses); watching a finished run reports it at once', async () => {
  const [get, text, ls, logs, logsJson, watch, cancel, missing] = await Promise.all(
    [
      ['get', 'micro', '--output', 'json'],
      ['get', 'micro'],
      ['ls'],
      ['logs', 'micro'],
      ['logs', 'micro', '-o', 'json'],
      ['watch', 'micro'],
      ['cancel', 'micro'],
      ['get', 'nope'],
    ].map(direct),
  );
  expect(shown(get)).toMatchObject({ code: 0 });
  const run = JSON.parse(get.stdout);
  expect([run.runId, run.state, run.rounds.length]).toEqual(['micro', 'JOB_STATE_SUCCEEDED', 3]);
  expect(run.rounds[2].metrics['eval/win_rate']).toEqual(expect.any(Number));
  expect(text.stdout).toMatch(/^state +SUCCEEDED$/m);
  expect(ls.stdout.split('\n')[1]).toMatch(/^micro +SUCCEEDED +2 +EVALUATE /);
  expect(shown(logs)).toMatchObject({ code: 0 });
  expect(logs.stdout.trimEnd().split('\n')).toHaveLength(1 + 2 + 2 * 4); // header, round 0's two stages, two rounds of four
  expect(JSON.parse(logsJson.stdout)).toHaveLength(10);
  expect(shown(watch)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^run micro SUCCEEDED\nround /) });
  // Server errors: exit 1 with the status code.
  expect(shown(cancel)).toMatchObject({ code: 1, stderr: "alignment: FAILED_PRECONDITION: run 'micro' already succeeded\n" });
  expect(shown(missing)).toMatchObject({ code: 1, stderr: "alignment: NOT_FOUND: run_id: no run 'nope'\n" });
});

test('run --wait on a run that is cancelled meanwhile exits 1 with the run’s error', async () => {
  // Round 0 trains 300 epochs (a minute or more), so that the run is still going when it is cancelled.
  const example = fs.readFileSync(path.join(ROOT, 'examples/micro-run.yaml'), 'utf8');
  const file = path.join(dataDir, 'long.yaml');
  fs.writeFileSync(file, example.replace('run_id: micro ', 'run_id: long  ').replace('    epochs: 1  ', '    epochs: 300'));
  const waiting = alignment(['run', '-f', file, '--wait'], { timeoutMs: 240_000, direct: true });
  await waitFor(async () => JSON.parse((await direct(['get', 'long', '-o', 'json'])).stdout).currentStage === 'STAGE_LEARN', 60_000, 'round 0 LEARN');
  const cancel = await direct(['cancel', 'long']);
  expect(shown(cancel)).toMatchObject({ code: 0, stdout: 'run long CANCELLED\n' });
  const result = await waiting;
  expect(shown(result)).toMatchObject({ code: 1, stdout: expect.stringMatching(/^long\nrun long CANCELLED\n/) });
  expect(result.stderr).toMatch(/^alignment: run long CANCELLED: cancelled by CancelRun$/m);
  // Watching it again reports the same at once.
  expect(shown(await direct(['watch', 'long']))).toMatchObject({ code: 1, stdout: 'run long CANCELLED\n' });
});
