/**
 * The stack under `npm run chaos`: `npm run stack` started through tools/stack/harness.ts (STACK_KEEP_GOING, so a
 * killed service does not stop the others), and the faults done to its services. A killed service is restarted
 * from the stack's own command table (tools/stack/services.ts) in a process group of its own, as an orchestrator
 * restarts a crashed container; nothing else is done to the run.
 */
import { isListening, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { ROOT, groupAlive, startStack, stopStack, type ServiceName, type Stack } from '../stack/harness';
import { serviceCommands, serviceEnv, type StackServiceName } from '../stack/services';
import { PAUSE_MS } from './plan';

const HARNESS_NAME: Record<StackServiceName, ServiceName> = {
  coordinator: 'coordinator',
  generator: 'generator',
  judge: 'judge',
  'dro-solver': 'droSolver',
  trainer: 'trainer',
};

/**
 * Set for every service: the coordinator's automatic resumes (services/coordinator/src/run/auto-resume.ts) wait
 * 1 s before the first instead of 5 s, and runs left RUNNING with nothing executing them are picked up every 2 s
 * instead of 15 s. The retry windows stay as deployed.
 */
export const CHAOS_ENV: NodeJS.ProcessEnv = { AUTO_RESUME_BACKOFF_MS: '1000', RESUME_TICK_MS: '2000' };

export class ChaosStack {
  /** Restarts: the processes this tool started in place of killed ones. */
  private readonly restarted = new Map<StackServiceName, SpawnedProcess>();
  restarts = 0;

  private constructor(readonly stack: Stack) {}

  /** "coordinator (pid 123), generator (pid 124), ...": the process groups serving now. */
  describeGroups(): string {
    return (['coordinator', 'generator', 'judge', 'dro-solver', 'trainer'] as const).map((n) => `${n} (pid ${this.group(n)})`).join(', ');
  }

  static async start(dataDir: string): Promise<ChaosStack> {
    return new ChaosStack(await startStack(dataDir, { STACK_KEEP_GOING: '1', LOG_LEVEL: 'warn', ...CHAOS_ENV }));
  }

  coordinatorAddress(): string {
    return this.stack.address('coordinator');
  }

  /** The process group now serving `name`. */
  private group(name: StackServiceName): number {
    const own = this.restarted.get(name);
    const pgid = own ? own.child.pid : this.stack.groups().get(name);
    if (!pgid) throw new Error(`no process group for ${name}`);
    return pgid;
  }

  async fault(name: StackServiceName, action: 'kill' | 'pause'): Promise<void> {
    if (action === 'kill') await this.killAndRestart(name);
    else await this.pause(name, PAUSE_MS);
  }

  /** kill -9 of the service's whole process group, then the same command again; resolves once it listens. */
  async killAndRestart(name: StackServiceName): Promise<void> {
    const pgid = this.group(name);
    process.kill(-pgid, 'SIGKILL');
    await waitFor(async () => !groupAlive(pgid), 10_000, `${name} to die`);
    const port = this.stack.ports[HARNESS_NAME[name]];
    const ports = Object.fromEntries(Object.entries(HARNESS_NAME).map(([n, h]) => [n, this.stack.ports[h]])) as Record<StackServiceName, number>;
    const service = serviceCommands(ROOT, this.stack.dataDir, ports)[name];
    const env = serviceEnv({ ...process.env, LOG_LEVEL: 'warn', ...CHAOS_ENV }, service, port);
    const child = spawnProcess(service.command[0], service.command.slice(1), env, ROOT);
    this.restarted.set(name, child);
    this.restarts++;
    await waitFor(
      async () => {
        if (child.child.exitCode !== null) throw new Error(`restarted ${name} exited: ${child.output().slice(-2000)}`);
        return isListening(port);
      },
      180_000,
      `restarted ${name} to listen`,
    );
  }

  /** SIGSTOP to the service's whole process group for `ms`, then SIGCONT. */
  async pause(name: StackServiceName, ms: number): Promise<void> {
    const pgid = this.group(name);
    process.kill(-pgid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, ms));
    } finally {
      process.kill(-pgid, 'SIGCONT');
    }
  }

  /** SIGTERM to the stack and to every restarted service; a group still there after 20 s is killed. */
  async stop(): Promise<void> {
    const own = [...this.restarted.values()];
    await Promise.all(own.map((p) => p.stop('SIGTERM')));
    // The stack's own groups: those of killed services are gone already.
    await stopStack(this.stack);
  }
}
