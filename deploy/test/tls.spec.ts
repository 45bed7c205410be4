// TLS in the rendered manifests: every service mounts its own Secret (made by tools/deploy/make-certs.sh --secrets)
// and points TLS_* at it; the backends require client certificates and allow exactly their callers; and the Secrets
// the script makes are valid, named as the volumes expect, and hold certificates that match the addresses the
// services call each other by.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, effectiveEnv, mainContainer, renderAll, serviceWorkloads, validateSchema, type K8sObject, type Rendered } from './manifests';

const VARIANTS = [
  'local-cpu', 'local-cpu+tracing', 'gpu', 'gpu+tracing', 'gpu+lm-on-gpu', 'gpu+tracing+lm-on-gpu', 'gpu+learn-as-jobs', 'gpu+tracing+learn-as-jobs',
];
/** Who calls each backend (docs/architecture.md; the network policies allow the same calls). */
const CALLERS: Record<string, string> = { generator: 'coordinator', judge: 'coordinator', trainer: 'coordinator', 'dro-solver': 'trainer' };
const SERVICES = ['coordinator', ...Object.keys(CALLERS)];

let rendered: Rendered;
let secrets: K8sObject[];

beforeAll(() => {
  rendered = renderAll();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignment-certs-'));
  execFileSync('bash', [path.join(REPO_ROOT, 'tools/deploy/make-certs.sh'), '--secrets', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  secrets = parseAllDocuments(fs.readFileSync(path.join(dir, 'secrets.yaml'), 'utf8')).map((d) => d.toJS() as K8sObject).filter(Boolean);
}, 600_000);

describe.each(VARIANTS)('%s', (variant) => {
  const objects = () => rendered.variants.get(variant)!;

  test('every service serves TLS from its own Secret, mounted whole (so that rotations reach the files)', () => {
    for (const w of serviceWorkloads(objects())) {
      const c = mainContainer(w);
      const env = effectiveEnv(objects(), w.namespace, c);
      const mount = c.volumeMounts?.find((m) => m.name === 'tls');
      const volume = w.spec.volumes?.find((v) => v.name === 'tls');
      expect({ app: w.app, secret: volume?.secret?.secretName, readOnly: mount?.readOnly, subPath: mount?.subPath })
        .toEqual({ app: w.app, secret: `${w.app}-tls`, readOnly: true, subPath: undefined });
      expect({ app: w.app, cert: env.TLS_CERT_FILE, key: env.TLS_KEY_FILE, ca: env.TLS_CA_FILE, plaintext: env.ALLOW_PLAINTEXT }).toEqual({
        app: w.app,
        cert: `${mount!.mountPath}/tls.crt`,
        key: `${mount!.mountPath}/tls.key`,
        ca: `${mount!.mountPath}/ca.crt`,
        plaintext: undefined,
      });
    }
  });

  test('backends require a client certificate and allow only their caller; the coordinator takes one optionally', () => {
    const auth: Record<string, [string | undefined, string | undefined]> = {};
    for (const w of serviceWorkloads(objects())) {
      const env = effectiveEnv(objects(), w.namespace, mainContainer(w));
      auth[w.app] = [env.TLS_CLIENT_AUTH, env.TLS_ALLOWED_CLIENTS];
    }
    expect(auth).toEqual({
      coordinator: ['optional', undefined],
      ...Object.fromEntries(Object.entries(CALLERS)
        // With LEARN as Jobs there is no trainer service (the Jobs' pods use its Secret: learn-as-jobs.spec.ts).
        .filter(([backend]) => backend !== 'trainer' || !variant.includes('learn-as-jobs'))
        .map(([backend, caller]) => [backend, ['require', caller]])),
    });
  });

  test('no Service exposes the plaintext health-only port', () => {
    for (const service of objects().filter((o) => o.kind === 'Service' && SERVICES.includes(o.metadata.name))) {
      const ports = (service.spec as { ports: { name: string }[] }).ports.map((p) => p.name);
      expect({ service: service.metadata.name, ports }).toEqual({ service: service.metadata.name, ports: ['grpc'] });
    }
  });
});

describe('make-certs.sh --secrets', () => {
  const data = (name: string) => (secrets.find((s) => s.metadata.name === `${name}-tls`)?.data ?? {}) as Record<string, string>;
  const pem = (value: string) => Buffer.from(value, 'base64');

  test('makes a valid Secret per service, in the namespace, with the keys the manifests read', () => {
    for (const secret of secrets) validateSchema(secret);
    expect(secrets.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).sort()).toEqual(SERVICES.map((n) => `alignment/${n}-tls`).sort());
    for (const name of SERVICES) expect(Object.keys(data(name)).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
  });

  test('each certificate names its service, matches the address others call it by, and is signed by the shared CA', () => {
    for (const name of SERVICES) {
      const cert = new X509Certificate(pem(data(name)['tls.crt']));
      const ca = new X509Certificate(pem(data(name)['ca.crt']));
      expect({ name, subject: cert.subject, signed: cert.verify(ca.publicKey) }).toEqual({ name, subject: `CN=${name}`, signed: true });
      // GENERATOR_ADDRESS=generator:50052 and the like (render.spec.ts checks the addresses themselves).
      expect(cert.checkHost(name)).toBe(name);
      expect(cert.checkHost(`${name}.alignment.svc.cluster.local`)).toBe(`${name}.alignment.svc.cluster.local`);
    }
  });
});
