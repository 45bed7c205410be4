import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';

/** grpcurl as users run it: from PATH, else from `go install`'s default bin directory. */
export function grpcurlPath(): string {
  const candidates = [
    ...(process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, 'grpcurl')),
    path.join(process.env.GOBIN ?? '', 'grpcurl'),
    path.join(process.env.GOPATH ?? path.join(os.homedir(), 'go'), 'bin', 'grpcurl'),
  ];
  const found = candidates.find((candidate) => candidate && fs.existsSync(candidate));
  if (!found) throw new Error('grpcurl not found: install it with `go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3`');
  return found;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function grpcurl(args: string[], input?: string, timeoutMs = 20_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(grpcurlPath(), args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether nothing holds 127.0.0.1:port, by binding it for a moment. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive free ports, for a stack that takes a port base (the demo's and the campaign's
 * `--port-base`). The base is drawn below Linux's ephemeral range (32768-60999), where port-0 servers and outgoing
 * connections of tests running beside it take their ports, so a fixed base there could be taken at any moment.
 */
export async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(canBind))).every(Boolean)) return base;
  }
  throw new Error(`no block of ${count} free ports found between 20000 and 32000`);
}

/** Polls until fn resolves truthy or the timeout passes. */
/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < until) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** A service started as its own process (the way `nx run <svc>:serve` starts it), for black-box tests. */
export interface SpawnedProcess {
  child: ChildProcess;
  output: () => string;
  /**
   * Signals the process group and resolves with the exit code (null when a signal ended it). A group still running
   * `killAfterMs` later (default 60 s) is sent SIGKILL: a service that hangs on shutdown fails the test that waits
   * for its exit code instead of outliving every hook timeout.
   */
  stop: (signal?: NodeJS.Signals, killAfterMs?: number) => Promise<number | null>;
}

export function spawnProcess(command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): SpawnedProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM', killAfterMs = 60_000) => {
      const send = (sig: NodeJS.Signals) => {
        if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          /* already gone */
        }
      };
      send(signal);
      const escalation = setTimeout(() => send('SIGKILL'), killAfterMs);
      try {
        return await exited;
      } finally {
        clearTimeout(escalation);
      }
    },
  };
}

/**
 * A CA and a certificate per name (CN=name, SANs name, localhost, 127.0.0.1) made by tools/deploy/make-certs.sh in
 * dir: dir/ca.crt, dir/<name>.crt and dir/<name>.key. Run it again on the same dir to re-issue under the same CA.
 */
export function makeCertificates(dir: string, names: string[]): { ca: string; cert(name: string): string; key(name: string): string } {
  const script = path.resolve(__dirname, '..', '..', '..', 'tools', 'deploy', 'make-certs.sh');
  execFileSync('bash', [script, dir, ...names], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { ca: path.join(dir, 'ca.crt'), cert: (name) => path.join(dir, `${name}.crt`), key: (name) => path.join(dir, `${name}.key`) };
}

/** The TLS_* environment of a service that holds the certificate of `name` from makeCertificates(dir). */
export function tlsEnv(dir: string, name: string, extra: Record<string, string> = {}): Record<string, string> {
  return { TLS_CA_FILE: path.join(dir, 'ca.crt'), TLS_CERT_FILE: path.join(dir, `${name}.crt`), TLS_KEY_FILE: path.join(dir, `${name}.key`), ...extra };
}
