// Client certificates as principals (TLS_PRINCIPALS): over real TLS on loopback, with certificates made by
// tools/deploy/make-certs.sh, a mapped certificate owns the runs it starts, an admin one sees every run, and a call
// with no certificate or an unmapped one is UNAUTHENTICATED; a bearer token still works without a certificate.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Configuration, CoordinatorClient, DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { channelCredentials, createClient, startServer, tlsFromEnv, unaryCall, type RunningServer } from '@alignment/service-kit';
import { makeCertificates, tlsEnv } from '@alignment/service-kit/testing';
import { closeHarnesses, harness, type Harness } from '../testing/engine-harness';
import { validSpec } from '../testing/run-fixtures';
import { TokenAuthenticator } from './auth';
import { CertificateAuthenticator, parsePrincipals } from './cert-auth';
import { coordinatorBinding } from './service';

const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coordinator-certs-'));
makeCertificates(certDir, ['coordinator', 'alice-laptop', 'ops-cli', 'judge']);
const TOKEN = 'bob-token-0123456789ab';
let h: Harness;
let server: RunningServer;
const clients: CoordinatorClient[] = [];

beforeAll(async () => {
  h = harness();
  const tokensFile = path.join(h.ws.root, 'tokens');
  fs.writeFileSync(tokensFile, `${TOKEN} bob\n`);
  const authenticator = new CertificateAuthenticator(parsePrincipals('alice-laptop=alice, ops-cli=ops:admin'), new TokenAuthenticator(tokensFile));
  const tls = tlsFromEnv(tlsEnv(certDir, 'coordinator', { TLS_CLIENT_AUTH: 'optional' }));
  server = await startServer({ name: 'cert-auth-test', port: 0, host: '127.0.0.1', bindings: [coordinatorBinding(h.engine, authenticator)], descriptorSetPath: DESCRIPTOR_SET_PATH, tls });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.shutdown();
  closeHarnesses();
});

/** A coordinator client holding the certificate of `name` (none: CA only), optionally sending a bearer token. */
function as(name: string | undefined, token?: string): CoordinatorClient {
  const env = name ? tlsEnv(certDir, name) : { TLS_CA_FILE: path.join(certDir, 'ca.crt') };
  const client = createClient(CoordinatorClient, server.address, {
    credentials: channelCredentials(tlsFromEnv(env)),
    defaultDeadlineMs: 10_000,
    ...(token ? { metadata: { authorization: `Bearer ${token}` } } : {}),
  });
  clients.push(client);
  return client;
}
const listed = async (c: CoordinatorClient) => (await unaryCall(c, c.listRuns, { pageSize: 0, pageToken: '' })).runs.map((r) => `${r.runId}:${r.owner}`);
const code = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => grpc.status[e.code]);
const spec = () => validSpec(h.ws, { configuration: Configuration.CONFIGURATION_DPO_SEED, rounds: 0, prompts: undefined, roundTraining: undefined });

it('makes the mapped principal of a client certificate the owner of the runs it starts', async () => {
  const alice = as('alice-laptop');
  const { run } = await unaryCall(alice, alice.startRun, { runId: 'alices', spec: spec() });
  expect(run?.owner).toBe('alice');
  await h.engine.settled('alices');
  const bob = as(undefined, TOKEN);
  await unaryCall(bob, bob.startRun, { runId: 'bobs', spec: spec() });
  await h.engine.settled('bobs');
  expect(await listed(alice)).toEqual(['alices:alice']);
  expect(await listed(bob)).toEqual(['bobs:bob']);
  expect((await listed(as('ops-cli'))).sort()).toEqual(['alices:alice', 'bobs:bob']); // ops is an admin
  expect(await code(unaryCall(bob, bob.cancelRun, { runId: 'alices' }))).toBe('PERMISSION_DENIED');
});

it('answers UNAUTHENTICATED without a certificate or token, and for a certificate TLS_PRINCIPALS does not name', async () => {
  const none = as(undefined);
  const error = (await unaryCall(none, none.listRuns, { pageSize: 0, pageToken: '' }).catch((e) => e)) as grpc.ServiceError;
  expect([grpc.status[error.code], error.details]).toEqual([
    'UNAUTHENTICATED',
    'missing credentials: present a client certificate named in TLS_PRINCIPALS or send "authorization: Bearer <token>"',
  ]);
  const judge = as('judge');
  expect(await code(unaryCall(judge, judge.listRuns, { pageSize: 0, pageToken: '' }))).toBe('UNAUTHENTICATED');
});

it('reads TLS_PRINCIPALS strictly', () => {
  expect(() => parsePrincipals('alice-laptop:alice')).toThrow("TLS_PRINCIPALS: 'alice-laptop:alice' is not identity=principal[:admin]");
  expect(parsePrincipals('a=b:admin').get('a')).toEqual({ name: 'b', admin: true });
});
