// Runs the README's DRO-solver commands as written, so the quick start stays true. Only the documented port (50054)
// is replaced, by a free one: a fixed port can be taken on a busy machine (any ephemeral socket may hold it), and then
// the server never answers there (the first test checks that the README still documents it).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, grpcurl, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';

const root = path.resolve(__dirname, '../../..');

function readmeBlock(tag: string): string[] {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const match = readme.match(new RegExp(`<!-- readme-test: ${tag} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``));
  if (!match) throw new Error(`README has no block tagged ${tag}`);
  return match[1].split('\n').filter((line) => line.trim() !== '');
}

/** Splits a shell line into argv (single quotes only, as the README uses). */
function argv(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

const README_PORT = '50054';

/** `line` with the documented port (PORT=50054, localhost:50054) replaced by `port`. */
const onPort = (line: string, port: string) => line.replace(new RegExp(`(PORT=|localhost:)${README_PORT}\\b`, 'g'), `$1${port}`);

describe('README quick start', () => {
  let server: SpawnedProcess;
  const readmeServe = readmeBlock('dro-solver-serve');
  const readmeCalls = readmeBlock('dro-solver-calls');
  let calls: string[][] = [];
  let address = '';

  beforeAll(async () => {
    const port = String(await freePort());
    address = `localhost:${port}`;
    calls = readmeCalls.map((line) => argv(onPort(line, port)));
    const words = argv(onPort(readmeServe[0], port));
    const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split('=', 2)));
    const command = words.filter((w) => !/^[A-Z_]+=/.test(w));
    server = spawnProcess(command[0], command.slice(1), { ...env, LOG_LEVEL: 'info', NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' }, root);
    try {
      await waitFor(
        async () => (await grpcurl(['-plaintext', address, 'grpc.health.v1.Health/Check'])).stdout.includes('SERVING'),
        90_000,
        `the README's serve command to answer on ${address}`,
      );
    } catch (error) {
      // The server's output as it is after the wait, not before it.
      throw new Error(`${(error as Error).message}\n${server.output()}`);
    }
  }, 120_000);

  afterAll(async () => {
    await server.stop('SIGTERM');
    // Ctrl-C in the README's terminal stops the whole process group; nothing may keep answering afterwards.
    await waitFor(async () => (await grpcurl(['-plaintext', address, 'grpc.health.v1.Health/Check'], undefined, 2_000)).code !== 0, 15_000, 'the server to stop');
  }, 30_000);

  it('documents the server on port 50054, which every call uses', () => {
    expect(readmeServe[0]).toMatch(/^PORT=50054 /);
    expect(readmeCalls.map((c) => /localhost:(\d+)/.exec(c)?.[1])).toEqual([README_PORT, README_PORT, README_PORT, README_PORT]);
  });

  it('lists the solver and the health service', async () => {
    expect(calls[0]).toContain('list');
    const result = await grpcurl(calls[0].slice(1));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('alignment.v1.DroSolver');
    expect(result.stdout).toContain('grpc.health.v1.Health');
  });

  it('describes the service', async () => {
    const result = await grpcurl(calls[1].slice(1));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('rpc Solve ( .alignment.v1.SolveRequest ) returns ( .alignment.v1.SolveResponse );');
  });

  it('reports SERVING', async () => {
    const result = await grpcurl(calls[2].slice(1));
    expect(JSON.parse(result.stdout)).toEqual({ status: 'SERVING' });
  });

  it('solves the example: the worst case moves the lowest-xi pair first and certifies optimality', async () => {
    const result = await grpcurl(calls[3].slice(1));
    expect(result.code).toBe(0);
    const response = JSON.parse(result.stdout);
    const logXi = [-0.05, -0.3, -0.9, -2.3];
    const xi = logXi.map(Math.exp);
    const erm = logXi.reduce((a, b) => a - b, 0) / 4;
    const epsSat = xi.reduce((a, b) => a + b, 0) / 4 - 0.01;
    expect(response.ermValue).toBeCloseTo(erm, 12);
    expect(response.epsilonSat).toBeCloseTo(epsSat, 12);
    expect(response.epsilon).toBeCloseTo(0.25 * epsSat, 12);
    expect(response.value).toBeGreaterThan(erm);
    // epsilon = 0.135: moving xi_4 = e^-2.3 costs 0.023 and xi_3 = e^-0.9 costs 0.099, so both move whole, and
    // the 0.013 left moves 7% of xi_2 = e^-0.3 (cost 0.183); the highest xi stays.
    expect(response.movedFraction[3]).toBe(1);
    expect(response.movedFraction[2]).toBe(1);
    expect(response.movedFraction[1]).toBeCloseTo((0.25 * epsSat - (xi[3] - 0.01) / 4 - (xi[2] - 0.01) / 4) / ((xi[1] - 0.01) / 4), 12);
    expect(response.movedFraction[0]).toBe(0);
    expect(Math.abs(response.diagnostics.dualGap ?? 0)).toBeLessThan(1e-10);
  });
});
