/**
 * `npm run stack` for the end-to-end suites of tools/stack: started as a user starts it, on free ports with a given
 * DATA_DIR, and stopped with SIGTERM, checking that no service process outlives it.
 */
import { freePort, grpcurl, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');

export type ServiceName = 'coordinator' | 'generator' | 'judge' | 'droSolver' | 'trainer';

export interface RunView {
  runId: string;
  state: string;
  currentRound?: number;
  currentStage?: string;
  error?: string;
  traceId?: string;
  stages?: Array<{ round?: number; stage: string; state: string; error?: string }>;
  rounds?: Array<{ round?: number; metrics: Record<string, number> }>;
  /** uint64 fields come as decimal strings in protobuf's JSON, and are absent when 0. */
  diskBytes?: string;
  objectStoreBytes?: string;
}

export interface Stack {
  dataDir: string;
  ports: Record<ServiceName, number>;
  process: SpawnedProcess;
  /** 127.0.0.1:<port> of a service. */
  address: (name: ServiceName) => string;
  /** The process groups the stack started ("started <name> (pid N)"), by name. */
  groups: () => Map<string, number>;
}

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `npm run stack` with DATA_DIR and free ports; resolves once it logs "ready". `env` goes to every service. */
export async function startStack(dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<Stack> {
  const ports: Record<ServiceName, number> = {
    coordinator: await freePort(),
    generator: await freePort(),
    judge: await freePort(),
    droSolver: await freePort(),
    trainer: await freePort(),
  };
  const child = spawnProcess(
    'npm',
    ['run', 'stack'],
    {
      DATA_DIR: dataDir,
      COORDINATOR_PORT: String(ports.coordinator),
      GENERATOR_PORT: String(ports.generator),
      JUDGE_PORT: String(ports.judge),
      DRO_SOLVER_PORT: String(ports.droSolver),
      TRAINER_PORT: String(ports.trainer),
      NX_DAEMON: 'false',
      NX_TUI: 'false',
      LOG_LEVEL: 'info', // jest.setup.js quiets the services' logs; the stack's own lines are not pino's
      ...env,
    },
    ROOT,
  );
  const stack: Stack = {
    dataDir,
    ports,
    process: child,
    address: (name) => `127.0.0.1:${ports[name]}`,
    groups: () => {
      const groups = new Map<string, number>();
      for (const m of child.output().matchAll(/started (\S+) \(pid (\d+)\)/g)) groups.set(m[1], Number(m[2]));
      return groups;
    },
  };
  await waitFor(
    async () => {
      if (child.child.exitCode !== null) throw new Error(`npm run stack exited:\n${child.output().slice(-4000)}`);
      return child.output().includes('[stack      ] ready:');
    },
    180_000,
    'the stack to be ready',
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n--- stack output ---\n${child.output().slice(-4000)}`);
  });
  return stack;
}

/** SIGTERM to the stack; every process group it started must be gone within 20 s (else SIGKILL and throw). */
export async function stopStack(stack: Stack): Promise<void> {
  const groups = stack.groups();
  await stack.process.stop('SIGTERM');
  await waitFor(async () => [...groups.values()].every((g) => !groupAlive(g)), 20_000, 'the services to exit').catch(() => {
    for (const g of groups.values()) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
    throw new Error(`process groups left behind: ${[...groups].filter(([, g]) => groupAlive(g)).map(([n]) => n).join(', ')}`);
  });
}

/** grpcurl's transport flags: plaintext, or (tlsDir: a STACK_TLS_DIR) mTLS with the stack's `cli` client certificate. */
export function grpcurlTransport(tlsDir?: string): string[] {
  return tlsDir ? ['-cacert', path.join(tlsDir, 'ca.crt'), '-cert', path.join(tlsDir, 'cli.crt'), '-key', path.join(tlsDir, 'cli.key')] : ['-plaintext'];
}

export async function getRun(address: string, runId: string, tlsDir?: string): Promise<RunView> {
  const result = await grpcurl([...grpcurlTransport(tlsDir), '-d', JSON.stringify({ run_id: runId }), address, 'alignment.v1.Coordinator/GetRun']);
  if (result.code !== 0) throw new Error(`GetRun failed: ${result.stderr}`);
  return JSON.parse(result.stdout).run as RunView;
}

export async function waitFinished(address: string, runId: string, timeoutMs: number, tlsDir?: string): Promise<RunView> {
  return waitFor(
    async () => {
      const run = await getRun(address, runId, tlsDir);
      return ['JOB_STATE_RUNNING', 'JOB_STATE_PENDING'].includes(run.state) ? undefined : run;
    },
    timeoutMs,
    `run ${runId} to finish`,
  );
}
