/**
 * End to end: `npm run stack` with a temporary DATA_DIR and free ports, the micro run of examples/micro-run.json
 * started with grpcurl, run to JOB_STATE_SUCCEEDED; then a second run whose coordinator is killed (kill -9, its
 * whole process group) as soon as round 1 starts, restarted alone with `npx nx run coordinator:serve`, and still
 * completes. Finally SIGTERM to the stack leaves no service process behind.
 *
 * Cost (2 cores): ~15 s to build the micro inputs (tiny Llama + ONNX export; the torch import dominates), ~5 s for
 * the services to listen, ~10-20 s per micro run (3 trainer jobs, 5 evaluations), ~10 s to restart the coordinator
 * through Nx: about 1 min in all, 4 min at most (the timeouts below).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, grpcurl, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';

const ROOT = path.resolve(__dirname, '../..');
jest.setTimeout(240_000);

interface RunView {
  runId: string;
  state: string;
  currentRound?: number;
  error?: string;
  rounds?: Array<{ round?: number; metrics: Record<string, number> }>;
}

let dataDir: string;
let ports: Record<'coordinator' | 'generator' | 'judge' | 'droSolver' | 'trainer', number>;
let stack: SpawnedProcess | undefined;
let coordinator: SpawnedProcess | undefined;

const coordinatorAddress = () => `127.0.0.1:${ports.coordinator}`;
const backendEnv = () => ({
  GENERATOR_ADDRESS: `localhost:${ports.generator}`,
  JUDGE_ADDRESS: `localhost:${ports.judge}`,
  TRAINER_ADDRESS: `localhost:${ports.trainer}`,
});

/** examples/micro-run.json with its `.data/micro/` paths moved to this test's DATA_DIR. */
function microRequest(runId: string): string {
  const text = fs.readFileSync(path.join(ROOT, 'examples/micro-run.json'), 'utf8').split('.data/micro/').join(`${dataDir}/micro/`);
  const request = JSON.parse(text);
  request.run_id = runId;
  return JSON.stringify(request);
}

async function startRun(runId: string): Promise<void> {
  const result = await grpcurl(['-plaintext', '-d', '@', coordinatorAddress(), 'alignment.v1.Coordinator/StartRun'], microRequest(runId));
  if (result.code !== 0) throw new Error(`StartRun failed: ${result.stderr}${result.stdout}`);
  expect(JSON.parse(result.stdout).run.runId).toBe(runId);
}

async function getRun(runId: string): Promise<RunView> {
  const result = await grpcurl(['-plaintext', '-d', JSON.stringify({ run_id: runId }), coordinatorAddress(), 'alignment.v1.Coordinator/GetRun']);
  if (result.code !== 0) throw new Error(`GetRun failed: ${result.stderr}`);
  return JSON.parse(result.stdout).run as RunView;
}

async function waitFinished(runId: string, timeoutMs: number): Promise<RunView> {
  return waitFor(
    async () => {
      const run = await getRun(runId);
      return ['JOB_STATE_RUNNING', 'JOB_STATE_PENDING'].includes(run.state) ? undefined : run;
    },
    timeoutMs,
    `run ${runId} to finish`,
  );
}

function expectEvaluated(run: RunView): void {
  expect({ state: run.state, error: run.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: undefined });
  const rounds = (run.rounds ?? []).map((r) => r.round ?? 0).sort();
  expect(rounds).toEqual([0, 1, 2]);
  for (const round of run.rounds ?? []) {
    expect(round.metrics).toEqual(
      expect.objectContaining({
        'eval/win_rate': expect.any(Number),
        'eval/win_rate_ci_low': expect.any(Number),
        'eval/win_rate_ci_high': expect.any(Number),
        'eval/gold_reward': expect.any(Number),
      }),
    );
    expect(round.metrics['eval/comparisons']).toBe(16); // 8 held-out prompts x samples_per_prompt 2
  }
}

/** The process groups the stack started ("started <name> (pid N)"), by name. */
function stackGroups(): Map<string, number> {
  const groups = new Map<string, number>();
  for (const m of stack!.output().matchAll(/started (\S+) \(pid (\d+)\)/g)) groups.set(m[1], Number(m[2]));
  return groups;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-e2e-'));
  ports = { coordinator: await freePort(), generator: await freePort(), judge: await freePort(), droSolver: await freePort(), trainer: await freePort() };
  stack = spawnProcess(
    'npm',
    ['run', 'stack'],
    {
      DATA_DIR: dataDir,
      COORDINATOR_PORT: String(ports.coordinator),
      GENERATOR_PORT: String(ports.generator),
      JUDGE_PORT: String(ports.judge),
      DRO_SOLVER_PORT: String(ports.droSolver),
      TRAINER_PORT: String(ports.trainer),
      STACK_KEEP_GOING: '1', // the coordinator is killed on purpose below
      NX_DAEMON: 'false',
      NX_TUI: 'false',
      LOG_LEVEL: 'info', // jest.setup.js quiets the services' logs; the stack's own lines are not pino's
    },
    ROOT,
  );
  await waitFor(
    async () => {
      if (stack!.child.exitCode !== null) throw new Error(`npm run stack exited:\n${stack!.output().slice(-4000)}`);
      return stack!.output().includes('[stack      ] ready:');
    },
    180_000,
    'the stack to be ready',
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n--- stack output ---\n${stack!.output().slice(-4000)}`);
  });
});

afterAll(async () => {
  await coordinator?.stop('SIGTERM');
  if (stack) {
    const groups = stackGroups();
    await stack.stop('SIGTERM');
    // No orphans: every process group the stack started is gone.
    await waitFor(async () => [...groups.values()].every((g) => !groupAlive(g)), 20_000, 'the services to exit').catch(() => {
      for (const g of groups.values()) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
      throw new Error(`process groups left behind: ${[...groups].filter(([, g]) => groupAlive(g)).map(([n]) => n).join(', ')}`);
    });
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the micro run of examples/micro-run.json succeeds with eval metrics in every round', async () => {
  for (const file of ['model/checkpoint/config.json', 'model/onnx/model.onnx', 'seed_pairs.jsonl', 'round-1.jsonl', 'round-2.jsonl', 'eval.jsonl']) {
    expect(fs.existsSync(path.join(dataDir, 'micro', file))).toBe(true);
  }
  await startRun('micro');
  const run = await waitFinished('micro', 120_000);
  expectEvaluated(run);
  // ListRuns sees it.
  const list = await grpcurl(['-plaintext', '-d', '{}', coordinatorAddress(), 'alignment.v1.Coordinator/ListRuns']);
  expect(list.stdout).toContain('"runId": "micro"');
});

test('a run survives kill -9 of the coordinator mid-run and a restart of the coordinator alone', async () => {
  const runId = 'micro-kill';
  await startRun(runId);
  // As soon as round 1 has started (its stage directory exists), kill the coordinator's whole process group.
  const round1 = path.join(dataDir, 'runs', runId, 'round-1');
  await waitFor(async () => fs.existsSync(round1), 120_000, 'round 1 to start');
  const pgid = stackGroups().get('coordinator')!;
  expect(pgid).toBeGreaterThan(0);
  process.kill(-pgid, 'SIGKILL');
  await waitFor(async () => !groupAlive(pgid), 10_000, 'the coordinator to die');
  const before = await getRun(runId).catch(() => undefined);
  expect(before).toBeUndefined(); // nothing answers on the coordinator's port now

  coordinator = spawnProcess(
    'npx',
    ['nx', 'run', 'coordinator:serve', '--outputStyle=stream'],
    { DATA_DIR: dataDir, PORT: String(ports.coordinator), ...backendEnv(), NX_DAEMON: 'false', NX_TUI: 'false', LOG_LEVEL: 'info' },
    ROOT,
  );
  await waitFor(async () => (await getRun(runId)).runId === runId, 120_000, 'the restarted coordinator to answer GetRun').catch((error: Error) => {
    throw new Error(`${error.message}\n--- coordinator output ---\n${coordinator!.output().slice(-4000)}`);
  });
  const ready = await waitFor(
    async () => coordinator!.output().split('\n').find((l) => l.includes('"coordinator ready"')),
    20_000,
    'the restarted coordinator to log that it is ready',
  );
  expect(ready).toContain(`"resumed":["${runId}"]`);
  const run = await waitFinished(runId, 120_000);
  expectEvaluated(run);
});
