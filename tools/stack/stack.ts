/**
 * `npm run stack`: the five services on loopback with one data directory, logs prefixed per service on stdout.
 *
 *   DATA_DIR=./.data npm run stack        # Ctrl-C / SIGTERM stops them all (each runs in its own process group)
 *
 * State under $DATA_DIR (default ./.data, resolved against the repo root, which is every service's cwd):
 *   coordinator/runs.sqlite, runs/<run>/...     the coordinator (DATA_DIR itself: the services share these paths)
 *   generator/, judge/, trainer/                the generator's, judge's and trainer's own state
 *   micro/                                      the micro run's inputs (tools/stack/prepare_micro.py; cached)
 *
 * Environment: DATA_DIR; COORDINATOR_PORT (50051), GENERATOR_PORT (50052), JUDGE_PORT (50053), DRO_SOLVER_PORT
 * (50054), TRAINER_PORT (50055); STACK_KEEP_GOING=1 keeps the others running when a service exits (by default
 * any service exiting stops the stack, exit status 1); STACK_SKIP_MICRO=1 skips building micro/; STACK_TLS_DIR=<dir>
 * runs it over mTLS (stackTls below: certificates made there by tools/deploy/make-certs.sh on first use).
 *
 * Order: codegen (cached by Nx), then the generator, judge, DRO solver and trainer, together with the micro inputs;
 * the coordinator starts once those four accept connections and micro/ exists (it resumes RUNNING runs at start, so
 * it must find its services up).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { serviceCommands, serviceEnv } from './services';

const ROOT = path.resolve(__dirname, '../..');
const DATA_DIR = path.resolve(ROOT, process.env.DATA_DIR || '.data');
const KEEP_GOING = process.env.STACK_KEEP_GOING === '1';
const STOP_GRACE_MS = 15_000;

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0 || value > 65535) throw new Error(`${name} must be a port, got '${raw}'`);
  return value;
}

const PORTS = {
  coordinator: port('COORDINATOR_PORT', 50051),
  generator: port('GENERATOR_PORT', 50052),
  judge: port('JUDGE_PORT', 50053),
  'dro-solver': port('DRO_SOLVER_PORT', 50054),
  trainer: port('TRAINER_PORT', 50055),
};
type Name = keyof typeof PORTS;
const addr = (name: Name) => `127.0.0.1:${PORTS[name]}`;

/**
 * STACK_TLS_DIR: every service on mTLS with its own certificate from that directory, the backends answering only the
 * identities that call them (the coordinator; the trainer for the DRO solver), the coordinator also taking a client
 * certificate named `cli` as an admin principal (TLS_PRINCIPALS) besides bearer tokens.
 */
const TLS_DIR = process.env.STACK_TLS_DIR ? path.resolve(ROOT, process.env.STACK_TLS_DIR) : undefined;
const CALLERS: Record<string, string> = { generator: 'coordinator', judge: 'coordinator', trainer: 'coordinator', 'dro-solver': 'trainer' };

function stackTls(name: string): NodeJS.ProcessEnv {
  if (!TLS_DIR) return {};
  const files = { TLS_CA_FILE: path.join(TLS_DIR, 'ca.crt'), TLS_CERT_FILE: path.join(TLS_DIR, `${name}.crt`), TLS_KEY_FILE: path.join(TLS_DIR, `${name}.key`) };
  if (name === 'coordinator') return { ...files, TLS_CLIENT_AUTH: 'optional', TLS_PRINCIPALS: 'cli=cli:admin' };
  return { ...files, TLS_CLIENT_AUTH: 'require', TLS_ALLOWED_CLIENTS: CALLERS[name] };
}
const VENV_PYTHON = 'venv=$(bash tools/python/venv.sh) && ';
const SERVICES = serviceCommands(ROOT, DATA_DIR, PORTS);

const WIDTH = Math.max(...Object.keys(SERVICES).map((n) => n.length), 'stack'.length);
const prefix = (name: string) => `[${name.padEnd(WIDTH)}] `;
const log = (message: string) => process.stdout.write(`${prefix('stack')}${message}\n`);

/** Copies a stream to stdout line by line, each line prefixed. */
function pipeLines(stream: NodeJS.ReadableStream | null, name: string): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) process.stdout.write(`${prefix(name)}${line}\n`);
  });
  stream.on('end', () => {
    if (pending) process.stdout.write(`${prefix(name)}${pending}\n`);
  });
}

const running = new Map<string, ChildProcess>();
let stopping = false;

function start(name: string, command: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    // HOST: the local stack listens on loopback only (in a pod the services bind every interface).
    env: name in PORTS ? serviceEnv({ ...process.env, ...stackTls(name) }, { command, env }, PORTS[name as Name]) : { ...process.env, HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: stop() signals the whole group (tsx's node, the venv's python, ...)
  });
  running.set(name, child);
  pipeLines(child.stdout, name);
  pipeLines(child.stderr, name);
  child.on('exit', (code, signal) => {
    running.delete(name);
    if (stopping || (code === 0 && !SERVICES[name as Name])) return;
    log(`${name} exited (${signal ?? `code ${code}`})`);
    if (!KEEP_GOING && SERVICES[name as Name]) void stopAll(1);
  });
  log(`started ${name} (pid ${child.pid})${name in PORTS ? ` on ${addr(name as Name)}` : ''}`);
  return child;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM to every process group (the coordinator first, so it stops using the others), SIGKILL after the grace. */
async function stopAll(status: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log(`stopping ${[...running.keys()].join(', ') || 'nothing'}`);
    const order = ['coordinator', ...[...running.keys()].filter((n) => n !== 'coordinator')];
    const coordinator = running.get('coordinator');
    if (coordinator) {
      signalGroup(coordinator, 'SIGTERM');
      await Promise.race([exited(coordinator), new Promise((r) => setTimeout(r, 5_000))]);
    }
    const children = order.map((n) => running.get(n)).filter((c): c is ChildProcess => c !== undefined);
    children.forEach((c) => signalGroup(c, 'SIGTERM'));
    const timer = setTimeout(() => {
      for (const [name, c] of running) {
        log(`${name} still running after ${STOP_GRACE_MS / 1000} s: SIGKILL`);
        signalGroup(c, 'SIGKILL');
      }
    }, STOP_GRACE_MS);
    await Promise.all(children.map(exited));
    clearTimeout(timer);
    // Anything left in a group whose leader exited (a grandchild that ignored SIGTERM).
    children.forEach((c) => signalGroup(c, 'SIGKILL'));
    log('stopped');
    process.exit(status);
  }
  return new Promise<never>(() => undefined);
}

function listening(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: p });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitListening(name: Name, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await listening(PORTS[name]))) {
    if (stopping) return;
    if (!running.has(name)) throw new Error(`${name} exited before listening on ${addr(name)}`);
    if (Date.now() > until) throw new Error(`${name} is not listening on ${addr(name)} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`${name} is listening on ${addr(name)}`);
}

function run(name: string, command: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = start(name, command, env);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${name} failed (${signal ?? `exit code ${code}`})`)),
    );
  });
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll(0));
  fs.mkdirSync(DATA_DIR, { recursive: true });
  log(`DATA_DIR=${DATA_DIR}`);

  const busy = (await Promise.all((Object.keys(PORTS) as Name[]).map(async (n) => ((await listening(PORTS[n])) ? n : undefined)))).filter(Boolean);
  if (busy.length > 0) throw new Error(`ports already in use: ${busy.map((n) => addr(n as Name)).join(', ')} (another stack running?)`);

  // Generated contracts (TypeScript and the trainer's Python stubs); Nx caches both.
  const codegen = spawnSync(path.join(ROOT, 'node_modules/.bin/nx'), ['run-many', '-t', 'codegen', '-p', 'contracts', 'trainer', '--outputStyle=static'], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, NX_DAEMON: 'false' },
  });
  if (codegen.status !== 0) throw new Error(`codegen failed (exit ${codegen.status ?? codegen.signal})`);
  if (TLS_DIR && !fs.existsSync(path.join(TLS_DIR, 'cli.crt'))) {
    const names = [...Object.keys(PORTS), 'cli'];
    const made = spawnSync('bash', [path.join(ROOT, 'tools/deploy/make-certs.sh'), TLS_DIR, ...names], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (made.status !== 0) throw new Error(`make-certs.sh failed (exit ${made.status ?? made.signal})`);
  }
  if (TLS_DIR) log(`mTLS: certificates in ${TLS_DIR} (the client certificate cli.crt / cli.key is an admin of the coordinator)`);

  const micro =
    process.env.STACK_SKIP_MICRO === '1'
      ? Promise.resolve()
      : run('micro', ['bash', '-c', `${VENV_PYTHON}exec "$venv/bin/python" tools/stack/prepare_micro.py "$1"`, 'micro', path.join(DATA_DIR, 'micro')]);
  const backends: Name[] = ['generator', 'judge', 'dro-solver', 'trainer'];
  for (const name of backends) start(name, SERVICES[name].command, SERVICES[name].env);
  await Promise.all([micro, ...backends.map((n) => waitListening(n, 180_000))]);
  if (stopping) return;
  start('coordinator', SERVICES.coordinator.command, SERVICES.coordinator.env);
  await waitListening('coordinator', 120_000);
  if (stopping) return; // it exited: not ready
  const transport = TLS_DIR ? `-cacert ${TLS_DIR}/ca.crt -cert ${TLS_DIR}/cli.crt -key ${TLS_DIR}/cli.key` : '-plaintext';
  log(`ready: grpcurl ${transport} -d @ ${addr('coordinator')} alignment.v1.Coordinator/StartRun < examples/micro-run.json`);
}

main().catch((error: Error) => {
  log(`error: ${error.message}`);
  void stopAll(1);
});
