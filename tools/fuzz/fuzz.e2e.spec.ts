import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './services';

/**
 * `npm run fuzz -- --cases 60` as CI runs it: the five services started by the command itself on free ports, 60 cases
 * (12 per service, every RPC reached), and no crash, hang or wrong code; then 30 cases with the services confined
 * (--confine). About 30 s on 2 cores once the tiny test models are built (tools/testing/tiny-models.ts builds them on
 * a cold cache, about 30 s more).
 */
const TIMEOUT_MS = 5 * 60_000;

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function fuzz(args: string[]): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'fuzz', '--', ...args], { cwd: ROOT, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
}

function listening(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('npm run fuzz', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-e2e-'));
  let run: Outcome;
  let summary: Record<string, any>;

  beforeAll(async () => {
    run = await fuzz(['--cases', '60', '--data-dir', dataDir]);
    console.log(`npm run fuzz -- --cases 60 took ${run.seconds.toFixed(0)} s`);
    const lines = run.stdout.trim().split('\n');
    summary = JSON.parse(lines[lines.length - 1]);
  }, TIMEOUT_MS);

  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('runs 60 cases with no crash, hang or wrong code, and says so on its last stdout line', () => {
    if (run.code !== 0) throw new Error(`npm run fuzz exited ${run.code}:\n${run.stderr.slice(-6000)}`);
    expect(Object.keys(summary).slice(0, 5)).toEqual(['check', 'cases', 'crashes', 'hangs', 'wrong_codes']);
    expect(summary).toMatchObject({ check: 'fuzz', cases: 60, crashes: 0, hangs: 0, wrong_codes: 0 });
    for (const service of ['coordinator', 'generator', 'judge', 'dro-solver', 'trainer']) {
      expect(summary.per_service[service]).toMatchObject({ cases: 12, crashes: 0, hangs: 0, wrong_codes: 0 });
    }
  });

  it('reports each case and the per-service table on stderr', () => {
    expect(run.stderr.match(/^\[fuzz\] \[ ?\d+\/60\] /gm)).toHaveLength(60);
    expect(run.stderr).toMatch(/service\s+cases\s+ok\s+refused\s+crashes\s+hangs\s+wrong codes/);
    expect(run.stderr).toMatch(/^total\s+60\s+\d+\s+\d+\s+0\s+0\s+0$/m);
  });

  it('stops every service it started', async () => {
    const addresses = [...run.stderr.matchAll(/is SERVING on (127\.0\.0\.1:\d+)/g)].map((m) => m[1]);
    expect(addresses).toHaveLength(5);
    expect(await Promise.all(addresses.map(listening))).toEqual([false, false, false, false, false]);
  });

  // As deployed (deploy/k8s): ARTIFACT_ROOTS and READ_ONLY_ROOTS set, so the path cases meet the confinement too.
  it('finds nothing wrong with the services confined either', async () => {
    const confined = await fuzz(['--cases', '30', '--confine', '--seed', 'confined']);
    if (confined.code !== 0) throw new Error(`npm run fuzz -- --confine exited ${confined.code}:\n${confined.stderr.slice(-6000)}`);
    const last = JSON.parse(confined.stdout.trim().split('\n').pop()!);
    expect(last).toMatchObject({ check: 'fuzz', cases: 30, crashes: 0, hangs: 0, wrong_codes: 0, confined: true });
  }, TIMEOUT_MS);

  it('exits 2 on a bad option, starting nothing', async () => {
    const bad = await fuzz(['--cases', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--cases: expected an integer in [1, 1000000], got 'many'");
    expect(bad.stderr).not.toContain('SERVING');
  });
});
