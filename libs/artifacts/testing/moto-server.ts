// A real S3-compatible server on loopback for tests and the s3-check target: moto's standalone server, run from the
// trainer's virtualenv (tools/python/venv.sh pins moto[s3] and flask in services/trainer/requirements-io.txt).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { s3Client } from '../src/s3/client';

const REPO_ROOT = path.resolve(__dirname, '../../..');

/** The trainer venv's python: $ALIGNMENT_VENV (set by tools/ci/test.sh), else tools/python/venv.sh's answer. */
export function venvPython(): Promise<string> {
  if (process.env.ALIGNMENT_VENV) return Promise.resolve(path.join(process.env.ALIGNMENT_VENV, 'bin', 'python'));
  return new Promise((resolve, reject) =>
    execFile('bash', ['tools/python/venv.sh'], { cwd: REPO_ROOT, timeout: 30 * 60_000 }, (error, stdout) =>
      error ? reject(error) : resolve(path.join(stdout.trim(), 'bin', 'python')),
    ),
  );
}

/** Why moto cannot be started here (no venv, or moto/flask missing from it), or undefined when it can. */
export async function motoUnavailable(): Promise<string | undefined> {
  let python: string;
  try {
    python = await venvPython();
  } catch (error) {
    return `no trainer virtualenv (tools/python/venv.sh failed: ${(error as Error).message})`;
  }
  if (!fs.existsSync(python)) return `no python at ${python}`;
  return new Promise((resolve) =>
    execFile(python, ['-c', 'import moto.server, flask'], (error) => resolve(error ? `moto[s3]/flask not importable by ${python}` : undefined)),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface MotoServer {
  /** http://127.0.0.1:PORT, for S3_ENDPOINT_URL. */
  endpoint: string;
  stop(): Promise<void>;
}

/** Starts moto on a free loopback port and waits (up to 60 s) until it answers HTTP. */
export async function startMoto(): Promise<MotoServer> {
  const python = await venvPython();
  const port = await freePort();
  const child: ChildProcess = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto.server exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`moto.server did not answer on ${endpoint} within 60 s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { endpoint, stop };
}

/**
 * For a jest spec: starts moto before the spec's tests (failing them when it cannot: moto[s3] is a pinned dependency
 * of the trainer's venv, requirements-io.txt, so its absence is a broken install), points the S3 client at it
 * (S3_ENDPOINT_URL and test credentials, plus `env`), creates `buckets`, and stops it and restores the environment
 * after them. Call at a spec's top level.
 */
export function useMotoInSpec(buckets: string[], env: () => NodeJS.ProcessEnv = () => ({})): void {
  let moto: MotoServer | undefined;
  const saved = { ...process.env };
  beforeAll(async () => {
    const unavailable = await motoUnavailable();
    if (unavailable) throw new Error(`the S3 tests need a moto server: ${unavailable}`);
    moto = await startMoto();
    Object.assign(process.env, { S3_ENDPOINT_URL: moto.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', ...env() });
    for (const Bucket of buckets) await s3Client().send(new CreateBucketCommand({ Bucket }));
  }, 120_000);
  afterAll(async () => {
    await moto?.stop();
    process.env = saved;
  });
}
