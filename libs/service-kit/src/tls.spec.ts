import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { DESCRIPTOR_SET_PATH, DroSolverClient, DroSolverService, SolveRequest, SolveResponse } from '@alignment/contracts';
import { makeCertificates, tlsEnv } from '@alignment/service-kit/testing';
import { startServer, type RunningServer, type ServiceBinding } from './server';
import { createClient, unaryCall } from './client';
import { channelCredentials, ReloadingCertificateProvider } from './tls';
import { PLAINTEXT, TlsConfigError, tlsFromEnv } from './tls-config';
import { service as healthService } from 'grpc-health-check';

// Real servers on loopback with certificates made by tools/deploy/make-certs.sh (openssl).

const solve: ServiceBinding = {
  definition: DroSolverService as unknown as ServiceBinding['definition'],
  handlers: { solve: async (request: SolveRequest) => SolveResponse.fromPartial({ value: request.logXi.length }) },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kit-tls-'));
const certs = makeCertificates(dir, ['generator', 'coordinator', 'judge']);
const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kit-tls-other-'));
makeCertificates(otherDir, ['coordinator']);

function client(address: string, env: Record<string, string>): DroSolverClient {
  return createClient(DroSolverClient, address, { credentials: channelCredentials(tlsFromEnv(env)), retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 }, defaultDeadlineMs: 5_000 });
}

async function callStatus(c: DroSolverClient): Promise<string> {
  try {
    const response = await unaryCall(c, c.solve, SolveRequest.fromPartial({ logXi: [1, 2, 3], delta: 0.1 }));
    return `OK ${response.value}`;
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code];
  } finally {
    c.close();
  }
}

describe('mTLS with an allowlist', () => {
  let running: RunningServer;
  beforeAll(async () => {
    const env = tlsEnv(dir, 'generator', { TLS_CLIENT_AUTH: 'require', TLS_ALLOWED_CLIENTS: 'coordinator,trainer', TLS_RELOAD_INTERVAL_MS: '100' });
    running = await startServer({ name: 'kit-tls', port: 0, host: '127.0.0.1', bindings: [solve], descriptorSetPath: DESCRIPTOR_SET_PATH, tls: tlsFromEnv(env), healthPort: 0 });
  });
  afterAll(() => running.shutdown());

  it('serves an allowed client certificate', async () => {
    expect(await callStatus(client(running.address, tlsEnv(dir, 'coordinator')))).toBe('OK 3');
  });

  it('answers UNAUTHENTICATED to a TLS client without a certificate', async () => {
    expect(await callStatus(client(running.address, { TLS_CA_FILE: certs.ca }))).toBe('UNAUTHENTICATED');
  });

  it('answers UNAUTHENTICATED to a client certificate from another CA', async () => {
    expect(await callStatus(client(running.address, { ...tlsEnv(otherDir, 'coordinator'), TLS_CA_FILE: certs.ca }))).toBe('UNAUTHENTICATED');
  });

  it('answers PERMISSION_DENIED to a verified certificate whose identity is not allowed', async () => {
    expect(await callStatus(client(running.address, tlsEnv(dir, 'judge')))).toBe('PERMISSION_DENIED');
  });

  it('cannot be reached in plaintext, nor by a client that does not trust its CA (UNAVAILABLE: no handshake)', async () => {
    expect(await callStatus(client(running.address, {}))).toBe('UNAVAILABLE');
    expect(await callStatus(client(running.address, { TLS_CA_FILE: path.join(otherDir, 'ca.crt') }))).toBe('UNAVAILABLE');
  });

  it('answers Kubernetes probes on the plaintext health-only port', async () => {
    const HealthClient = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
    const health = new HealthClient(`127.0.0.1:${running.healthPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      check(request: object, callback: (error: grpc.ServiceError | null, response: { status: string }) => void): void;
    };
    const response = await new Promise<{ status: string }>((resolve, reject) =>
      health.check({ service: '' }, (error, r) => (error ? reject(error) : resolve(r))),
    );
    health.close();
    expect(response.status).toBe('SERVING');
  });

  it('serves new connections with the re-issued certificate once its files change (reload)', async () => {
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: running.port, ca: fs.readFileSync(certs.ca), servername: 'localhost', ALPNProtocols: ['h2'] }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.end();
        });
        socket.on('error', reject);
      });
    const serialOf = (file: string) => new X509Certificate(fs.readFileSync(file)).serialNumber;
    const before = await served();
    expect(before).toBe(serialOf(certs.cert('generator')));
    makeCertificates(dir, ['generator']);
    const reissued = serialOf(certs.cert('generator'));
    expect(reissued).not.toBe(before);
    const deadline = Date.now() + 5_000;
    let now = before;
    while (now !== reissued && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      now = await served();
    }
    expect(now).toBe(reissued);
    expect(await callStatus(client(running.address, tlsEnv(dir, 'coordinator')))).toBe('OK 3');
  });
});

describe('ReloadingCertificateProvider', () => {
  it('hands on a re-issued pair, keeps the last good one when the files do not match, and ignores unchanged files', async () => {
    const rotating = fs.mkdtempSync(path.join(os.tmpdir(), 'kit-tls-rotate-'));
    makeCertificates(rotating, ['judge', 'coordinator']);
    const provider = new ReloadingCertificateProvider(tlsFromEnv(tlsEnv(rotating, 'judge', { TLS_RELOAD_INTERVAL_MS: '60000' })));
    const seen: string[] = [];
    const listener = (update: { certificate: Buffer } | null) => void seen.push(update ? new X509Certificate(update.certificate).serialNumber : 'none');
    provider.addIdentityCertificateListener(listener);
    await new Promise((r) => process.nextTick(r));
    const first = new X509Certificate(fs.readFileSync(path.join(rotating, 'judge.crt'))).serialNumber;
    expect(seen).toEqual([first]);
    expect(provider.reload()).toBe(false); // unchanged
    fs.copyFileSync(path.join(rotating, 'coordinator.key'), path.join(rotating, 'judge.key')); // a rotation half written
    expect(provider.reload()).toBe(false);
    makeCertificates(rotating, ['judge']);
    expect(provider.reload()).toBe(true);
    const second = new X509Certificate(fs.readFileSync(path.join(rotating, 'judge.crt'))).serialNumber;
    expect(seen).toEqual([first, second]);
    provider.removeIdentityCertificateListener(listener);
  });
});

describe('TLS settings', () => {
  it('name the variable that is wrong', () => {
    expect(() => tlsFromEnv({ TLS_CERT_FILE: certs.cert('judge') })).toThrow('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
    expect(() => tlsFromEnv({ ...tlsEnv(dir, 'judge'), TLS_CLIENT_AUTH: 'always' })).toThrow("TLS_CLIENT_AUTH must be none, optional or require, got 'always'");
    expect(() => tlsFromEnv({ ...tlsEnv(dir, 'judge'), TLS_KEY_FILE: certs.key('coordinator') })).toThrow(/TLS_CERT_FILE .* not a matching PEM certificate and key/);
    expect(() => tlsFromEnv({ TLS_CA_FILE: path.join(dir, 'missing.crt') })).toThrow(/TLS_CA_FILE: .*missing.crt cannot be read/);
    expect(() => tlsFromEnv({ TLS_CA_FILE: certs.ca, TLS_ALLOWED_CLIENTS: 'coordinator' })).toThrow(/TLS_ALLOWED_CLIENTS needs TLS_CLIENT_AUTH=require/);
    expect(() => tlsFromEnv({ ...tlsEnv(dir, 'judge'), TLS_CLIENT_AUTH: 'optional', TLS_ALLOWED_CLIENTS: 'coordinator' })).toThrow(/TLS_ALLOWED_CLIENTS needs TLS_CLIENT_AUTH=require/);
  });
});

describe('plaintext', () => {
  const saved = process.env.ALLOW_PLAINTEXT;
  afterEach(() => {
    if (saved === undefined) delete process.env.ALLOW_PLAINTEXT;
    else process.env.ALLOW_PLAINTEXT = saved;
  });

  it('is refused on a non-loopback address without ALLOW_PLAINTEXT=1, and served with it', async () => {
    delete process.env.ALLOW_PLAINTEXT;
    const options = { name: 'kit-plain', port: 0, host: '0.0.0.0', bindings: [solve], descriptorSetPath: DESCRIPTOR_SET_PATH, tls: PLAINTEXT };
    await expect(startServer(options)).rejects.toThrow(TlsConfigError);
    await expect(startServer(options)).rejects.toThrow('refusing to serve plaintext gRPC on 0.0.0.0');
    process.env.ALLOW_PLAINTEXT = '1';
    const running = await startServer(options);
    expect(await callStatus(client(running.address, {}))).toBe('OK 3');
    await running.shutdown();
  });
});
