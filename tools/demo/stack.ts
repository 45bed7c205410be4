import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CoordinatorClient, GeneratorClient, JudgeClient, TrainerClient } from '@alignment/contracts';
import { createClient } from '@alignment/service-kit';
import { isListening } from '@alignment/service-kit/testing';

export const ROOT = path.resolve(__dirname, '../..');

export const SERVICE_NAMES = ['coordinator', 'generator', 'judge', 'dro-solver', 'trainer'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];
export type StackPorts = Record<ServiceName, number>;

/** The demo's own ports (beside `npm run stack`'s 50051-50055, so both can run on one machine). */
export function defaultPorts(base = 50151): StackPorts {
  return { coordinator: base, generator: base + 1, judge: base + 2, 'dro-solver': base + 3, trainer: base + 4 };
}

export interface StackClients {
  coordinator: CoordinatorClient;
  generator: GeneratorClient;
  judge: JudgeClient;
  trainer: TrainerClient;
  close(): void;
}

export function connect(ports: StackPorts): StackClients {
  const address = (name: ServiceName) => `127.0.0.1:${ports[name]}`;
  const clients = {
    coordinator: createClient(CoordinatorClient, address('coordinator')),
    generator: createClient(GeneratorClient, address('generator'), { defaultDeadlineMs: 30 * 60_000 }),
    judge: createClient(JudgeClient, address('judge'), { defaultDeadlineMs: 30 * 60_000 }),
    trainer: createClient(TrainerClient, address('trainer'), { defaultDeadlineMs: 60 * 60_000 }),
  };
  return { ...clients, close: () => Object.values(clients).forEach((c) => c.close()) };
}

/** The trainer's Python (tools/python/venv.sh builds the pinned venv once, keyed by the requirements' hash). */
export function venvPython(): string {
  const result = spawnSync('bash', ['tools/python/venv.sh'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (result.status !== 0) throw new Error('tools/python/venv.sh failed: the Python environment could not be built');
  return path.join(result.stdout.trim(), 'bin', 'python');
}

/**
 * `npm run stack` (tools/stack/stack.ts) as a child process group on the given ports and data directory; its logs go
 * to `logFile`. Refuses to start when one of the ports is taken (a stack left over from another demo, say), naming it.
 */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const PORT_RELEASE_WAIT_MS = 15_000;

export class DemoStack {
  private child?: ChildProcess;
  private exited = false;
  /**
   * The stack runs in its own process group (detached), so a Ctrl-C or a SIGTERM to the demo or the campaign would
   * not reach it: these handlers pass the signal on to the stack's group and exit, so no service is left holding the
   * ports. The runs stay resumable (the coordinator's state is durable); rerunning the command picks them up.
   */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.signalGroup('SIGTERM');
    process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143);
  };
  private readonly onExit = (): void => this.signalGroup('SIGTERM');

  constructor(
    readonly ports: StackPorts,
    readonly dataDir: string,
    private readonly logFile: string,
    private readonly extraEnv: Record<string, string> = {},
  ) {}

  async start(timeoutMs = 10 * 60_000): Promise<void> {
    // A stack stopped just before (the previous command of a script) may still be letting go of its ports: wait a
    // little before calling a port taken.
    const portDeadline = Date.now() + PORT_RELEASE_WAIT_MS;
    for (const name of SERVICE_NAMES) {
      while (await isListening(this.ports[name])) {
        if (Date.now() > portDeadline) {
          throw new Error(`port ${this.ports[name]} (${name}) is already in use: stop what listens there or pass --port-base`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    fs.mkdirSync(path.dirname(this.logFile), { recursive: true });
    const log = fs.openSync(this.logFile, 'a');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.extraEnv,
      DATA_DIR: this.dataDir,
      STACK_SKIP_MICRO: '1',
      COORDINATOR_PORT: String(this.ports.coordinator),
      GENERATOR_PORT: String(this.ports.generator),
      JUDGE_PORT: String(this.ports.judge),
      DRO_SOLVER_PORT: String(this.ports['dro-solver']),
      TRAINER_PORT: String(this.ports.trainer),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    };
    this.child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['tools/stack/stack.ts'], { cwd: ROOT, env, stdio: ['ignore', log, log], detached: true });
    this.child.once('exit', () => (this.exited = true));
    for (const signal of STOP_SIGNALS) process.once(signal, this.onSignal);
    process.once('exit', this.onExit);
    fs.closeSync(log);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`the stack exited while starting; see ${this.logFile}`);
      if (await isListening(this.ports.coordinator)) return;
      if (Date.now() > deadline) throw new Error(`the stack did not start within ${timeoutMs / 1000} s; see ${this.logFile}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (!this.child?.pid || this.exited) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM to the stack's process group (it stops every service), SIGKILL after a grace period. */
  async stop(graceMs = 20_000): Promise<void> {
    for (const signal of STOP_SIGNALS) process.removeListener(signal, this.onSignal);
    process.removeListener('exit', this.onExit);
    const child = this.child;
    if (!child?.pid || this.exited) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }
}
