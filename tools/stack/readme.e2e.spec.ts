/**
 * The README's "Run the whole stack" commands, run as written against `npm run stack` (only the coordinator's port
 * changes, to a free one; DATA_DIR is a temporary directory): StartRun with examples/micro-run.json, GetRun,
 * WatchRun, ListRuns, CancelRun on the running run, then StartRun again (which resumes a cancelled run) and WatchRun
 * to the end of the run.
 *
 * examples/micro-run.json names its inputs relative to the repo root (`.data/micro/...`, the default DATA_DIR), so
 * the micro inputs are built (or found, cached) in ./.data/micro, as `npm run stack` does with the default DATA_DIR:
 * the temporary DATA_DIR's micro/ is a link to it. About 45 s on 2 cores (15 s more when ./.data/micro is built).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { grpcurl, grpcurlPath, spawnProcess, waitFor, type CommandResult, type SpawnedProcess } from '@alignment/service-kit/testing';
import { ROOT, startStack, stopStack, type RunView, type Stack } from './harness';

jest.setTimeout(240_000);

const README_PORT = 'localhost:50051';

interface Command {
  line: string;
  argv: string[];
  /** The file after `<`, relative to the repo root (the README's commands run there). */
  stdin?: string;
}

/** The shell lines of the README block tagged `<!-- readme-test: TAG -->`, without `# comments`. */
function readmeBlock(tag: string): Command[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const match = readme.match(new RegExp(`<!-- readme-test: ${tag} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``));
  if (!match) throw new Error(`README has no block tagged ${tag}`);
  return match[1]
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      // Words (single quotes only, as the README uses), up to an unquoted `#`; `< file` is stdin.
      const words: string[] = [];
      for (const m of line.matchAll(/'([^']*)'|(\S+)/g)) {
        if (m[2]?.startsWith('#')) break;
        words.push(m[1] ?? m[2]);
      }
      const redirect = words.indexOf('<');
      const stdin = redirect >= 0 ? words[redirect + 1] : undefined;
      return { line, argv: redirect >= 0 ? words.slice(0, redirect) : words, stdin };
    });
}

/** Every message of grpcurl's output (pretty-printed JSON objects, one after the other). */
function messages(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split(/^(?=\{$)/m)
    .filter((chunk) => chunk.trim() !== '')
    .map((chunk) => JSON.parse(chunk));
}

let dataDir: string;
let stack: Stack | undefined;
let watch: SpawnedProcess | undefined;
const commands = readmeBlock('stack');
const grpcurlCommands = commands.filter((c) => c.argv[0] === 'grpcurl');
const example = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples/micro-run.json'), 'utf8'));
const runId: string = example.run_id;

/** The README's grpcurl line calling METHOD, its port replaced by the test stack's coordinator. */
function readmeCall(method: string): Command {
  const found = grpcurlCommands.filter((c) => c.argv.includes(`alignment.v1.Coordinator/${method}`));
  if (found.length !== 1) throw new Error(`README's stack block has ${found.length} grpcurl calls of ${method}, expected 1`);
  const command = found[0];
  expect(command.argv).toContain(README_PORT); // the documented default port: the one thing replaced
  const argv = command.argv.map((w) => (w === README_PORT ? `localhost:${stack!.ports.coordinator}` : w));
  return { ...command, argv };
}

/** Runs a README grpcurl line (without `grpcurl` itself) from the repo root, its stdin from the `<` file. */
async function run(method: string, timeoutMs?: number): Promise<CommandResult> {
  const command = readmeCall(method);
  const input = command.stdin !== undefined ? fs.readFileSync(path.join(ROOT, command.stdin), 'utf8') : undefined;
  return grpcurl(command.argv.slice(1), input, timeoutMs);
}

async function runOk(method: string, timeoutMs?: number): Promise<Record<string, unknown>> {
  const result = await run(method, timeoutMs);
  if (result.code !== 0) throw new Error(`${readmeCall(method).line}\nexited ${result.code}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout);
}

const runView = async (method: string) => (await runOk(method)).run as RunView;

/** The trainer's jobs of this run (their ids start with the run id). */
async function trainerJobs(): Promise<Array<{ jobId: string; state: string }>> {
  const result = await grpcurl(['-plaintext', '-d', '{}', stack!.address('trainer'), 'alignment.v1.Trainer/ListJobs']);
  if (result.code !== 0) throw new Error(`ListJobs failed: ${result.stderr}`);
  // The Python server's reflection has no json_name: grpcurl prints its fields as in the proto (job_id).
  const jobs = (JSON.parse(result.stdout).jobs ?? []) as Array<{ jobId?: string; job_id?: string; state: string }>;
  return jobs.map((j) => ({ jobId: j.jobId ?? j.job_id ?? '', state: j.state })).filter((j) => j.jobId.startsWith(`${runId}-`));
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-readme-'));
  // The stack builds $DATA_DIR/micro through this link: ./.data/micro, where the README's run looks for it.
  fs.symlinkSync(path.join(ROOT, '.data/micro'), path.join(dataDir, 'micro'));
  stack = await startStack(dataDir);
  expect(fs.existsSync(path.join(ROOT, '.data/micro/.complete'))).toBe(true);
});

afterAll(async () => {
  await watch?.stop('SIGTERM');
  if (stack) await stopStack(stack);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test("the README's block is `npm run stack` and the five Coordinator calls", () => {
  expect(commands[0].argv).toEqual(['npm', 'run', 'stack']);
  expect(grpcurlCommands.map((c) => c.argv.find((w) => w.startsWith('alignment.v1.Coordinator/')))).toEqual(
    ['StartRun', 'GetRun', 'WatchRun', 'ListRuns', 'CancelRun'].map((m) => `alignment.v1.Coordinator/${m}`),
  );
  expect(commands).toHaveLength(1 + grpcurlCommands.length);
});

test('StartRun starts the micro run and returns it', async () => {
  const started = await runView('StartRun');
  expect(started.runId).toBe(runId);
  expect(['JOB_STATE_PENDING', 'JOB_STATE_RUNNING']).toContain(started.state);
  expect(started.traceId).toMatch(/^[0-9a-f]{32}$/);
});

test('GetRun shows it running', async () => {
  const run = await runView('GetRun');
  expect(run.runId).toBe(runId);
  expect(run.state).toBe('JOB_STATE_RUNNING');
});

test('WatchRun streams its events while it runs', async () => {
  const command = readmeCall('WatchRun');
  watch = spawnProcess(grpcurlPath(), command.argv.slice(1), {}, ROOT);
  // The current stage first (the watcher joined late), then live events.
  await waitFor(async () => messages(watch!.output()).some((m) => m.stage !== undefined), 30_000, `a stage event from: ${command.line}`).catch(
    (error: Error) => {
      throw new Error(`${error.message}\n${watch!.output()}`);
    },
  );
  expect(watch.child.exitCode).toBeNull(); // still streaming: the run has not ended
});

test('ListRuns lists it', async () => {
  const listed = (await runOk('ListRuns')).runs as RunView[];
  expect(listed.map((r) => [r.runId, r.state])).toEqual([[runId, 'JOB_STATE_RUNNING']]);
});

test('CancelRun on the running run cancels it: GetRun says JOB_STATE_CANCELLED, WatchRun ends, the trainer job stops', async () => {
  // Cancel while round 0's trainer job runs.
  await waitFor(async () => (await trainerJobs()).some((j) => j.state === 'JOB_STATE_RUNNING'), 60_000, "round 0's trainer job to run");
  const cancelled = await runView('CancelRun');
  expect([cancelled.runId, cancelled.state]).toEqual([runId, 'JOB_STATE_CANCELLED']);

  // The watch ends by itself, its last message the cancelled run.
  const status = await waitFor(async () => watch!.child.exitCode !== null && { code: watch!.child.exitCode }, 10_000, 'WatchRun to end').catch(() => undefined);
  expect(status).toEqual({ code: 0 });
  const last = messages(watch!.output()).at(-1)!;
  expect((last.run as RunView | undefined)?.state).toBe('JOB_STATE_CANCELLED');

  const run = await runView('GetRun');
  expect([run.state, run.error]).toEqual(['JOB_STATE_CANCELLED', 'cancelled by CancelRun']);
  expect((run.stages ?? []).filter((s) => s.state === 'JOB_STATE_RUNNING')).toEqual([]);
  expect((run.stages ?? []).find((s) => s.round === undefined && s.stage === 'STAGE_LEARN')?.state).toBe('JOB_STATE_CANCELLED');
  // The services stop working on it: the trainer cancels the job, and no later stage starts.
  await waitFor(async () => (await trainerJobs()).every((j) => j.state === 'JOB_STATE_CANCELLED'), 30_000, 'the trainer job to be cancelled').catch(
    async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await trainerJobs())}`);
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(fs.readdirSync(path.join(dataDir, 'runs', runId))).toEqual(['round-0']);
  expect(fs.readdirSync(path.join(dataDir, 'runs', runId, 'round-0'))).toEqual(['learn']);
  expect((await runView('GetRun')).state).toBe('JOB_STATE_CANCELLED');
});

test('StartRun again resumes the cancelled run, and WatchRun streams until it succeeds', async () => {
  const resumed = await runView('StartRun');
  expect([resumed.runId, resumed.state]).toEqual([runId, 'JOB_STATE_RUNNING']);
  const watched = await run('WatchRun', 150_000);
  expect({ code: watched.code, stderr: watched.stderr }).toEqual({ code: 0, stderr: '' });
  const stream = messages(watched.stdout);
  expect(stream.length).toBeGreaterThan(1);
  expect(stream.filter((m) => m.run !== undefined)).toHaveLength(1); // the final Run, once, last
  const final = stream.at(-1)!.run as RunView;
  expect([final.runId, final.state]).toEqual([runId, 'JOB_STATE_SUCCEEDED']);
  expect(stream.some((m) => m.roundMetrics !== undefined)).toBe(true);

  const run_ = await runView('GetRun');
  expect(run_.state).toBe('JOB_STATE_SUCCEEDED');
  expect((run_.rounds ?? []).map((r) => r.round ?? 0).sort()).toEqual([0, 1, 2]);
  for (const round of run_.rounds ?? []) expect(round.metrics['eval/win_rate']).toEqual(expect.any(Number));
  const listed = (await runOk('ListRuns')).runs as RunView[];
  expect(listed.map((r) => [r.runId, r.state])).toEqual([[runId, 'JOB_STATE_SUCCEEDED']]);
  // A run that succeeded cannot be cancelled.
  const cancel = await run('CancelRun');
  expect(cancel.code).not.toBe(0);
  expect(cancel.stderr).toContain('FailedPrecondition');
  expect(cancel.stderr).toContain('already succeeded');
});
