/**
 * `npm run bench:load`: a bounded ghz load on the DroSolver's Solve and the coordinator's GetRun (issue 12), each
 * service a real process on loopback. Reports p50 / p99 latency, requests per second and the service's resident
 * memory (its process group's RSS) before and after the load. A benchmark, not a test: nothing here asserts a speed.
 *
 *   npm run bench:load -- [--requests N] [--concurrency C]      (defaults 20000 and 16)
 *
 * Needs ghz on PATH or in ~/go/bin (`go install github.com/bojand/ghz/cmd/ghz@v0.120.0`). The last stdout line is
 * {"check":"load","solve":{…},"get_run":{…}}.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CoordinatorClient, Configuration } from '@alignment/contracts';
import { createClient, unaryCall } from '@alignment/service-kit';
import { freePort, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { makeWorkspace, validSpec } from '../../services/coordinator/testing/run-fixtures';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

interface Result {
  requests: number;
  concurrency: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  rss_before_mb: number;
  rss_after_mb: number;
}

function ghzBinary(): string {
  const candidates = [path.join(os.homedir(), 'go/bin/ghz'), 'ghz'];
  for (const c of candidates) if (spawnSync(c, ['--version']).status === 0) return c;
  throw new Error('ghz not found: go install github.com/bojand/ghz/cmd/ghz@v0.120.0');
}

/** Resident memory of a process group (the tsx launcher and the service), MB. */
function rssMb(group: SpawnedProcess): number {
  const out = execFileSync('ps', ['-o', 'rss=', '-g', String(group.child.pid)], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim()).reduce((s, l) => s + Number(l.trim()), 0) / 1024;
}

function load(target: string, call: string, data: object, group: SpawnedProcess, requests: number, concurrency: number): Result {
  const before = rssMb(group);
  const out = execFileSync(ghzBinary(), ['--insecure', '--call', call, '-d', JSON.stringify(data), '-n', String(requests), '-c', String(concurrency), '--format', 'json', target], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const report = JSON.parse(out) as { rps: number; latencyDistribution: Array<{ percentage: number; latency: number }>; statusCodeDistribution: Record<string, number> };
  const at = (p: number) => (report.latencyDistribution.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  const errors = Object.entries(report.statusCodeDistribution).filter(([code]) => code !== 'OK').reduce((s, [, n]) => s + n, 0);
  return { requests, concurrency, rps: Math.round(report.rps), p50_ms: at(50), p99_ms: at(99), errors, rss_before_mb: Math.round(before), rss_after_mb: Math.round(rssMb(group)) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '16' } }, strict: true });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(requests) || requests < 1 || !Number.isInteger(concurrency) || concurrency < 1) throw new Error('--requests and --concurrency: positive integers');
  const ws = makeWorkspace({ rounds: 1 });
  const dataDir = path.join(ws.root, 'data');
  const [solverPort, coordinatorPort, down] = [await freePort(), await freePort(), await freePort()];
  const solver = spawnProcess(TSX, ['services/dro-solver/src/main.ts'], { PORT: String(solverPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, ROOT);
  const coordinator = spawnProcess(TSX, ['services/coordinator/src/main.ts'], {
    PORT: String(coordinatorPort), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn', UNAVAILABLE_ATTEMPTS: '1', AUTO_RESUMES: '0',
    GENERATOR_ADDRESS: `127.0.0.1:${down}`, JUDGE_ADDRESS: `127.0.0.1:${down}`, TRAINER_ADDRESS: `127.0.0.1:${down}`,
  }, ROOT);
  try {
    const client = createClient(CoordinatorClient, `127.0.0.1:${coordinatorPort}`, { defaultDeadlineMs: 5_000 });
    await waitFor(() => unaryCall(client, client.listRuns, { pageSize: 1, pageToken: '' }).then(() => true), 60_000, 'the coordinator');
    // A run to read: seed-only, it fails at once (no trainer) and stays in the database.
    await unaryCall(client, client.startRun, { runId: 'bench', spec: validSpec(ws, { configuration: Configuration.CONFIGURATION_DPO_SEED, rounds: 0, prompts: undefined, roundTraining: undefined }) });
    client.close();
    await waitFor(async () => spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${solverPort}`]).status === 0, 60_000, 'the DRO solver');
    const logXi = Array.from({ length: 256 }, (_, i) => -0.05 - ((i * 7919) % 97) / 50);
    const solve = load(`127.0.0.1:${solverPort}`, 'alignment.v1.DroSolver/Solve', { log_xi: logXi, rho: 0.25, delta: 0.01, omit_atoms: true }, solver, requests, concurrency);
    const getRun = load(`127.0.0.1:${coordinatorPort}`, 'alignment.v1.Coordinator/GetRun', { run_id: 'bench' }, coordinator, requests, concurrency);
    const row = (name: string, r: Result) =>
      `${name.padEnd(16)} ${String(r.requests).padStart(8)} ${String(r.concurrency).padStart(4)} ${String(r.rps).padStart(7)} ${r.p50_ms.toFixed(2).padStart(8)} ${r.p99_ms.toFixed(2).padStart(8)} ${String(r.errors).padStart(6)} ${`${r.rss_before_mb} → ${r.rss_after_mb}`.padStart(12)}`;
    process.stderr.write(`${'call'.padEnd(16)} requests    c     rps  p50 ms  p99 ms errors      RSS MB\n${row('Solve (N = 256)', solve)}\n${row('GetRun', getRun)}\n`);
    process.stdout.write(`${JSON.stringify({ check: 'load', cpus: os.cpus().length, solve, get_run: getRun })}\n`);
  } finally {
    await Promise.all([solver.stop(), coordinator.stop()]);
    fs.rmSync(ws.root, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench:load: ${(error as Error).message}\n`);
  process.exit(1);
});
