// The service binary as Kubernetes runs it: serves on $PORT, and on SIGTERM goes NOT_SERVING, drains and exits 0.
import * as path from 'node:path';
import { freePort, grpcurl, spawnProcess, waitFor } from '@alignment/service-kit/testing';

const root = path.resolve(__dirname, '../../..');

it('serves alignment.v1.Judge on $PORT and exits 0 after a graceful shutdown on SIGTERM', async () => {
  const port = await freePort();
  const server = spawnProcess(path.join(root, 'node_modules/.bin/tsx'), ['services/judge/src/main.ts'], { PORT: String(port), LOG_LEVEL: 'info' }, root);
  await waitFor(
    async () => (await grpcurl(['-plaintext', `127.0.0.1:${port}`, 'grpc.health.v1.Health/Check'])).stdout.includes('SERVING'),
    60_000,
    'the judge to serve',
  );
  const list = await grpcurl(['-plaintext', `127.0.0.1:${port}`, 'list']);
  expect(list.stdout.split('\n')).toContain('alignment.v1.Judge');
  const code = await server.stop('SIGTERM');
  expect(code).toBe(0);
  const logs = server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).msg);
  expect(logs).toEqual(['serving', 'signal received', 'shutting down: draining in-flight calls', 'stopped']);
}, 90_000);
