/**
 * End to end over mTLS: `npm run stack` with STACK_TLS_DIR, every service on its own certificate (made by
 * tools/deploy/make-certs.sh), the backends allowing only their callers. The SPA and W-DRO micro runs (coordinator ->
 * generator, judge, trainer; trainer -> DRO solver) run to JOB_STATE_SUCCEEDED, started with grpcurl holding the
 * `cli` client certificate; a plaintext caller, a caller without a certificate, and a certificate a backend does not
 * allow are refused. Cost on 2 cores: about as much as stack.e2e's two micro runs (~1 min).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { grpcurl } from '@alignment/service-kit/testing';
import { ROOT, grpcurlTransport, startStack, stopStack, waitFinished, type Stack } from './harness';

jest.setTimeout(240_000);

let dataDir: string;
let tlsDir: string;
let stack: Stack | undefined;

function microRequest(example: string, runId: string): string {
  const request = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', example), 'utf8').split('.data/micro/').join(`${dataDir}/micro/`));
  request.run_id = runId;
  return JSON.stringify(request);
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-tls-'));
  tlsDir = path.join(dataDir, 'tls');
  stack = await startStack(dataDir, { STACK_TLS_DIR: tlsDir });
});

afterAll(async () => {
  if (stack) await stopStack(stack);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

it('serves every service over TLS, saying so in its serving line', () => {
  // The Node services' 'serving' line, the trainer's 'listening' one.
  const serving = stack!.process.output().split('\n').filter((l) => /"msg":\s*"(serving|listening)"/.test(l));
  expect(serving.length).toBeGreaterThanOrEqual(5);
  for (const line of serving) expect(line).toMatch(/"transport":\s*"tls/);
});

it('runs the SPA and W-DRO micro runs to SUCCEEDED over mTLS', async () => {
  const coordinator = stack!.address('coordinator');
  for (const [example, runId] of [['micro-run.json', 'tls-spa'], ['micro-run-wdro.json', 'tls-wdro']]) {
    const started = await grpcurl([...grpcurlTransport(tlsDir), '-d', '@', coordinator, 'alignment.v1.Coordinator/StartRun'], microRequest(example, runId));
    expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
  }
  for (const runId of ['tls-spa', 'tls-wdro']) {
    const run = await waitFinished(coordinator, runId, 200_000, tlsDir);
    expect({ runId, state: run.state, error: run.error }).toEqual({ runId, state: 'JOB_STATE_SUCCEEDED', error: undefined });
  }
});

it('refuses plaintext, a caller without a certificate, and a certificate the backend does not allow', async () => {
  const generator = stack!.address('generator');
  const health = 'grpc.health.v1.Health/Check';
  const plaintext = await grpcurl(['-plaintext', generator, health]);
  expect(plaintext.code).not.toBe(0);
  const caOnly = await grpcurl(['-cacert', path.join(tlsDir, 'ca.crt'), generator, health]);
  expect(caOnly.stderr).toContain('Unauthenticated');
  // The cli certificate is the coordinator's admin, but the generator answers only the coordinator.
  const cli = await grpcurl([...grpcurlTransport(tlsDir), generator, health]);
  expect(cli.stderr).toContain('PermissionDenied');
  const asCoordinator = await grpcurl(['-cacert', path.join(tlsDir, 'ca.crt'), '-cert', path.join(tlsDir, 'coordinator.crt'), '-key', path.join(tlsDir, 'coordinator.key'), generator, health]);
  expect(asCoordinator.stdout).toContain('SERVING');
});
