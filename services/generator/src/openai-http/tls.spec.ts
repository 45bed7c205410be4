// The /v1 endpoint's transport: HTTPS with the service's TLS settings, client certificates and the allowlist, and
// plaintext refused off loopback, as for the gRPC servers (libs/service-kit tls-config.ts).
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { GenerateRequest } from '@alignment/contracts';
import { causalModelCache } from '@alignment/lm';
import { TlsConfigError, tlsFromEnv } from '@alignment/service-kit';
import { makeCertificates, tlsEnv } from '@alignment/service-kit/testing';
import { toJob } from '../service';
import { openAiModelsFromEnv, startOpenAiServer, type RunningOpenAiServer } from './http-server';

let dir: string;
let certs: ReturnType<typeof makeCertificates>;
let server: RunningOpenAiServer;
const cache = causalModelCache(1);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openai-tls-'));
  certs = makeCertificates(dir, ['generator', 'coordinator', 'intruder']);
  const tls = tlsFromEnv(tlsEnv(dir, 'generator', { TLS_CLIENT_AUTH: 'require', TLS_ALLOWED_CLIENTS: 'coordinator' }));
  server = await startOpenAiServer({ port: 0, host: '127.0.0.1', models: new Map([['policy', path.join(dir, 'unused')]]), cache, tls });
}, 60_000);
afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function get(url: string, client?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = { ca: fs.readFileSync(certs.ca), ...(client ? { cert: fs.readFileSync(certs.cert(client)), key: fs.readFileSync(certs.key(client)) } : {}) };
    https
      .get(url, options, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

it('serves HTTPS with the service certificate to an allowed client certificate, 403 to another, none without one', async () => {
  expect(server.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1$/);
  const ok = await get(`${server.baseUrl}/models`, 'coordinator');
  expect(ok.status).toBe(200);
  expect(JSON.parse(ok.body).data.map((m: { id: string }) => m.id)).toEqual(['policy']);
  const denied = await get(`${server.baseUrl}/models`, 'intruder');
  expect(denied.status).toBe(403);
  expect(JSON.parse(denied.body).error.type).toBe('permission_error');
  await expect(get(`${server.baseUrl}/models`)).rejects.toThrow();
});

it('refuses plaintext on a non-loopback address unless ALLOW_PLAINTEXT=1', async () => {
  const before = process.env.ALLOW_PLAINTEXT;
  delete process.env.ALLOW_PLAINTEXT;
  try {
    await expect(startOpenAiServer({ port: 0, host: '0.0.0.0', models: new Map(), cache, tls: undefined })).rejects.toThrow(TlsConfigError);
  } finally {
    if (before !== undefined) process.env.ALLOW_PLAINTEXT = before;
  }
});

it('reads OPENAI_MODELS and maps GenerateRequest model.openai onto the job', () => {
  expect([...openAiModelsFromEnv(' pi=/m/a , ref=/m/b ')]).toEqual([
    ['pi', '/m/a'],
    ['ref', '/m/b'],
  ]);
  expect(() => openAiModelsFromEnv('pi')).toThrow(/OPENAI_MODELS: 'pi'/);
  const job = toJob(GenerateRequest.fromPartial({ model: { onnx: { uri: '/m/a' }, openai: { baseUrl: 'http://vllm:8000/v1', model: 'pi' } } }));
  expect(job.model).toEqual({ uri: '/m/a', sha256: '', openai: { baseUrl: 'http://vllm:8000/v1', model: 'pi' } });
});
