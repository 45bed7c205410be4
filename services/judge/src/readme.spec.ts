// Runs the README's generator and judge commands as written (each line through bash, from the repo root), so the
// quick start stays true. Only the documented ports (50052, 50053) are replaced, by free ones: a fixed port can be
// taken on a busy machine (any ephemeral socket may hold it), and then the server never answers there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { freePort, grpcurl, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { tinyModels, TINY_MODELS_TIMEOUT_MS } from '../../../tools/testing/tiny-models';

const root = path.resolve(__dirname, '../../..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

function readmeBlock(tag: string): string[] {
  const match = readme.match(new RegExp(`<!-- readme-test: ${tag} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``));
  if (!match) throw new Error(`README has no block tagged ${tag}`);
  return match[1].split('\n').filter((line) => line.trim() !== '');
}

function bash(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', line], { cwd: root, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** grpcurl prints each message of a stream as one pretty-printed JSON object. */
function messages(stdout: string): Record<string, any>[] {
  return stdout
    .split(/\n(?=\{)/)
    .filter((chunk) => chunk.trim() !== '')
    .map((chunk) => JSON.parse(chunk));
}

const serverEnv = { LOG_LEVEL: 'info', NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' };
const modelsDir = path.join(root, '.data/tiny-models');

/** The README's ports and the free ones this run uses instead. */
const README_PORTS = { 'generator-serve': '50052', 'judge-serve': '50053' } as const;
const ports = new Map<string, string>();

/** `line` with each documented port (PORT=50052, localhost:50053) replaced by this run's (the first test checks the README has them). */
function onFreePorts(line: string): string {
  let out = line;
  for (const [readmePort, free] of ports) out = out.replace(new RegExp(`(PORT=|localhost:)${readmePort}\\b`, 'g'), `$1${free}`);
  return out;
}

describe('README: the generator and the judge', () => {
  const servers: SpawnedProcess[] = [];
  const calls = readmeBlock('lm-calls');

  it('documents the servers on ports 50052 and 50053, which the calls use', () => {
    expect(readmeBlock('generator-serve')[0]).toMatch(/^PORT=50052 /);
    expect(readmeBlock('judge-serve')[0]).toMatch(/^PORT=50053 /);
    expect(calls.map((c) => /localhost:(\d+)/.exec(c)![1])).toEqual(['50052', '50053', '50053']);
  });

  beforeAll(async () => {
    // The README's build command skips a directory that is already complete; seeding it from the test cache (the
    // same script's output, built once per machine) saves a second 30-second build on every fresh clone.
    const cached = await tinyModels();
    if (!fs.existsSync(path.join(modelsDir, 'reference.json'))) fs.cpSync(cached.root, modelsDir, { recursive: true });
    const [build] = readmeBlock('lm-models');
    const built = await bash(build);
    expect(built.stderr).toBe('');
    expect(built.code).toBe(0);
    fs.rmSync(path.join(modelsDir, 'responses.jsonl'), { force: true });
    fs.rmSync(path.join(modelsDir, 'pairs.jsonl'), { force: true });
    for (const readmePort of Object.values(README_PORTS)) ports.set(readmePort, String(await freePort()));
    for (const tag of ['generator-serve', 'judge-serve'] as const) {
      const serve = onFreePorts(readmeBlock(tag)[0]);
      const server = spawnProcess('bash', ['-c', serve], serverEnv, root);
      servers.push(server);
      const port = ports.get(README_PORTS[tag])!;
      try {
        await waitFor(
          async () => (await grpcurl(['-plaintext', `localhost:${port}`, 'grpc.health.v1.Health/Check'])).stdout.includes('SERVING'),
          90_000,
          `the README's ${tag} command (PORT=${port}) to answer`,
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${server.output()}`);
      }
    }
  }, TINY_MODELS_TIMEOUT_MS);

  afterAll(async () => {
    for (const server of servers) await server.stop('SIGTERM');
  });

  it('generates two responses per prompt into the responses artifact, streaming progress first', async () => {
    const result = await bash(onFreePorts(calls[0]));
    expect(result.stderr).toBe('');
    const events = messages(result.stdout);
    expect(events.slice(0, -1).every((e) => 'progress' in e)).toBe(true);
    const { result: done } = events[events.length - 1];
    expect(done.numPrompts).toBe('3');
    expect(done.numResponses).toBe('6');
    expect(done.responses.uri).toBe(`file://${modelsDir}/responses.jsonl`);
    const lines = fs.readFileSync(path.join(modelsDir, 'responses.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.prompt_index, l.responses.length])).toEqual([[0, 2], [1, 2], [2, 2]]);
  });

  it('labels the pairs with the SPA implicit reward and counts what it dropped', async () => {
    const result = await bash(onFreePorts(calls[1]));
    expect(result.stderr).toBe('');
    const { result: done } = messages(result.stdout).pop()!;
    const counts = { numPrompts: 0, numPairs: 0, droppedIdentical: 0, droppedTies: 0, droppedInvalid: 0, ...done.counts };
    const count = (v: unknown) => Number(v ?? 0);
    expect(count(counts.numPrompts)).toBe(3);
    expect(count(counts.numPairs) + count(counts.droppedIdentical) + count(counts.droppedTies) + count(counts.droppedInvalid)).toBe(3);
    const pairs = fs.readFileSync(path.join(modelsDir, 'pairs.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(pairs).toHaveLength(count(counts.numPairs));
    for (const pair of pairs) {
      expect(pair.method).toBe('spa_implicit');
      expect(pair.chosen_score).toBeGreaterThan(pair.rejected_score);
    }
  });

  it('scores a response as PyTorch does, to the value the README states', async () => {
    const result = await bash(onFreePorts(calls[2]));
    expect(result.stderr).toBe('');
    const [{ scores }] = messages(result.stdout);
    const reference = JSON.parse(fs.readFileSync(path.join(modelsDir, 'reference.json'), 'utf8'));
    // The README's call leaves prompt_encoding unset: the prompt is raw text, as the trainer's scores_raw encode it.
    const torch = reference.scores_raw.policy.find((s: { prompt: string; response: string }) => s.prompt === 'What colour is the sky?' && s.response === 'The sky is blue.');
    expect(Math.abs(scores[0].logp - torch.logp)).toBeLessThan(1e-3);
    expect(scores[0].tokenLogps).toHaveLength(torch.token_logps.length);
    const stated = Number(/PyTorch says\s+(-?\d+\.\d+) nats/.exec(readme)![1]);
    expect(stated).toBeCloseTo(torch.logp, 4);
  });
});
