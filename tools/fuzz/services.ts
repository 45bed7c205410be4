/**
 * The five services as child processes, each in its own process group, on loopback, with one data directory (as
 * `npm run stack` starts them: tools/stack/stack.ts), their logs in <data dir>/logs/<name>.log, their working
 * directory <data dir>/cwd. A service that
 * exits or stops answering its health check can be restarted; stopAll() is SIGTERM, then SIGKILL after a grace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SERVICE_NAMES, type ServiceName } from './model';

export const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const STOP_GRACE_MS = 15_000;
/** No grpc-js message limit on the fuzz side: the services' own limits are what is under test. */
export const CLIENT_OPTIONS: grpc.ChannelOptions = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 };

export interface StackOptions {
  dataDir: string;
  ports: Record<ServiceName, number>;
  /** The trainer's virtualenv python (tools/testing/tiny-models.ts venvPython). */
  python: string;
  /** Set for every service: ARTIFACT_ROOTS, READ_ONLY_ROOTS (confinement as deployed), or nothing. */
  env?: NodeJS.ProcessEnv;
}

export interface Service {
  name: ServiceName;
  address: string;
  client: grpc.Client;
  child?: ChildProcess;
  /** Set when the current process exited: 'code 1', 'SIGSEGV', ... */
  exited?: string;
  logFile: string;
  starts: number;
}

function commandOf(name: ServiceName, o: StackOptions): { command: string[]; env: NodeJS.ProcessEnv } {
  const addr = (n: ServiceName) => `127.0.0.1:${o.ports[n]}`;
  // Run from <data dir>/cwd (see Stack.spawn), so tsx is told where the workspace's tsconfig (its path aliases) is.
  const main = path.join(ROOT, 'services', name, 'src/main.ts');
  const node = (env: NodeJS.ProcessEnv) => ({ command: [TSX, '--tsconfig', path.join(ROOT, 'tsconfig.json'), main], env: { LOG_LEVEL: 'warn', LM_THREADS: '1', ...env } });
  switch (name) {
    case 'generator':
    case 'judge':
      return node({ DATA_DIR: path.join(o.dataDir, name) });
    case 'dro-solver':
      return node({});
    case 'coordinator':
      return node({
        DATA_DIR: o.dataDir,
        GENERATOR_ADDRESS: addr('generator'),
        JUDGE_ADDRESS: addr('judge'),
        TRAINER_ADDRESS: addr('trainer'),
        // A run the suite started is cancelled at once; nothing should resume it behind the suite's back.
        AUTO_RESUMES: '0',
        UNAVAILABLE_ATTEMPTS: '2',
      });
    case 'trainer':
      return {
        command: [o.python, '-m', 'alignment_trainer.server'],
        env: {
          PYTHONPATH: path.join(ROOT, 'services/trainer/src'),
          DATA_DIR: path.join(o.dataDir, 'trainer'),
          DRO_SOLVER_ADDRESS: addr('dro-solver'),
          LOG_LEVEL: 'warning',
          TRAINER_THREADS: '1',
          // A valid job the suite starts is cancelled at once; keep what one can build small meanwhile.
          TRAINER_MAX_PARAMETERS: '10000000',
          TRAINER_SHUTDOWN_GRACE_S: '5',
        },
      };
  }
}

/** grpc.health.v1.Health/Check for the server as a whole: true when it answers SERVING (status field 1 = 1). */
export function healthy(client: grpc.Client, timeoutMs = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      { deadline: Date.now() + timeoutMs },
      (error, response) => resolve(!error && response !== undefined && response.length >= 2 && response[0] === 0x08 && response[1] === 0x01),
    );
  });
}

export class Stack {
  readonly services: Record<ServiceName, Service>;
  private stopping = false;

  private readonly cwd: string;

  constructor(private readonly options: StackOptions) {
    fs.mkdirSync(path.join(options.dataDir, 'logs'), { recursive: true });
    this.cwd = path.join(options.dataDir, 'cwd');
    fs.mkdirSync(this.cwd, { recursive: true });
    const entries = SERVICE_NAMES.map((name): [ServiceName, Service] => {
      const address = `127.0.0.1:${options.ports[name]}`;
      return [name, { name, address, client: new grpc.Client(address, grpc.credentials.createInsecure(), CLIENT_OPTIONS), logFile: path.join(options.dataDir, 'logs', `${name}.log`), starts: 0 }];
    });
    this.services = Object.fromEntries(entries) as Record<ServiceName, Service>;
  }

  private spawn(service: Service): void {
    const { command, env } = commandOf(service.name, this.options);
    const log = fs.openSync(service.logFile, 'a');
    // The working directory is the data dir's cwd/: a relative output path a case (or a mutation) makes up lands
    // there, not in the repository.
    const child = spawn(command[0], command.slice(1), {
      cwd: this.cwd,
      env: { ...process.env, ...this.options.env, HOST: '127.0.0.1', PORT: String(this.options.ports[service.name]), ...env },
      stdio: ['ignore', log, log],
      detached: true,
    });
    fs.closeSync(log);
    service.child = child;
    service.exited = undefined;
    service.starts++;
    child.on('exit', (code, signal) => {
      if (service.child === child) service.exited = signal ?? `code ${code}`;
    });
  }

  /** Starts a service and waits until it answers SERVING. */
  async start(name: ServiceName, timeoutMs = 180_000): Promise<void> {
    const service = this.services[name];
    this.spawn(service);
    const until = Date.now() + timeoutMs;
    while (!(await healthy(service.client, 2_000))) {
      if (service.exited) throw new Error(`${name} exited while starting (${service.exited}); log: ${service.logFile}\n${this.logTail(name)}`);
      if (Date.now() > until) throw new Error(`${name} did not answer SERVING on ${service.address} within ${timeoutMs / 1000} s; log: ${service.logFile}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The backends together, then the coordinator (it calls them). */
  async startAll(onStarted: (name: ServiceName) => void = () => undefined): Promise<void> {
    const backends = SERVICE_NAMES.filter((n) => n !== 'coordinator');
    await Promise.all(backends.map((n) => this.start(n).then(() => onStarted(n))));
    await this.start('coordinator');
    onStarted('coordinator');
  }

  /** Kills what is left of a service (its whole process group) and starts it again. */
  async restart(name: ServiceName): Promise<void> {
    const service = this.services[name];
    if (service.child) await this.stopOne(service, 3_000);
    await this.start(name);
  }

  logTail(name: ServiceName, bytes = 2_000): string {
    try {
      const content = fs.readFileSync(this.services[name].logFile, 'utf8');
      return content.slice(-bytes);
    } catch {
      return '';
    }
  }

  private async stopOne(service: Service, graceMs: number): Promise<void> {
    const child = service.child;
    if (!child?.pid) return;
    const gone = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
    signalGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
    signalGroup(child.pid, 'SIGKILL'); // anything left in its group
    service.child = undefined;
  }

  /** SIGTERM to every service (the coordinator first), SIGKILL after the grace; idempotent. */
  async stopAll(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const coordinator = this.services.coordinator;
    await this.stopOne(coordinator, 5_000);
    await Promise.all(SERVICE_NAMES.filter((n) => n !== 'coordinator').map((n) => this.stopOne(this.services[n], STOP_GRACE_MS)));
    for (const service of Object.values(this.services)) service.client.close();
  }

  /** Synchronous last resort (process 'exit'): SIGKILL to every group still running. */
  killAllNow(): void {
    for (const service of Object.values(this.services)) if (service.child?.pid && service.child.exitCode === null) signalGroup(service.child.pid, 'SIGKILL');
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}
