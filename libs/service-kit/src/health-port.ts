import * as grpc from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';

/**
 * The health-only port: grpc.health.v1 alone, in plaintext, for Kubernetes `grpc:` probes, which cannot speak TLS
 * (deploy/README.md "TLS"). It answers what the main port's health service answers and serves nothing else, so the
 * plaintext carries no data. $HEALTH_PORT, bound on $HOST like the main port; unset: none.
 */
export function healthPortFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.HEALTH_PORT?.trim();
  if (!raw) return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`HEALTH_PORT must be an integer in [0, 65535], got '${raw}'`);
  return port;
}

export async function startHealthServer(health: HealthImplementation, host: string, port: number): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  health.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port: bound };
}
