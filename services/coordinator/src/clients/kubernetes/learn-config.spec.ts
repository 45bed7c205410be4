import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeCertificates } from '@alignment/service-kit/testing';
import { FakeKubernetesApi } from '../../../testing/fake-kubernetes-api';
import { configFromEnv } from '../../config';
import { KubernetesApi, connectionFromEnv } from './api-client';
import { kubernetesLearnConfigFromEnv } from './learn-config';

test('LEARN_EXECUTOR picks the LEARN executor: grpc by default, kubernetes, anything else refused by name', () => {
  expect(configFromEnv({}).learnExecutor).toBe('grpc');
  expect(configFromEnv({ LEARN_EXECUTOR: 'kubernetes' }).learnExecutor).toBe('kubernetes');
  expect(() => configFromEnv({ LEARN_EXECUTOR: 'k8s' })).toThrow("LEARN_EXECUTOR must be grpc or kubernetes, got 'k8s'");
});

test('K8S_LEARN_S3_SECRET names the Secret of the Jobs\' S3 settings: object-store by default with MODEL_STORE_URI, none without', () => {
  const image = { K8S_LEARN_IMAGE: 'alignment/trainer:0.1.0' };
  expect(kubernetesLearnConfigFromEnv(image, '/data').template.objectStoreSecret).toBeUndefined();
  const store = { ...image, MODEL_STORE_URI: 's3://models/team', S3_ARTIFACT_ROOTS: 's3://models/team', AWS_SECRET_ACCESS_KEY: 'never-copied' };
  const config = kubernetesLearnConfigFromEnv(store, '/data');
  expect(config.template.objectStoreSecret).toBe('object-store');
  // The prefixes the trainer may write go to the pods; the coordinator's own credentials never do.
  expect(config.template.env).toEqual({ S3_ARTIFACT_ROOTS: 's3://models/team' });
  expect(kubernetesLearnConfigFromEnv({ ...store, K8S_LEARN_S3_SECRET: ' minio-creds ' }, '/data').template.objectStoreSecret).toBe('minio-creds');
  expect(kubernetesLearnConfigFromEnv({ ...image, K8S_LEARN_S3_SECRET: 's3.creds' }, '/data').template.objectStoreSecret).toBe('s3.creds');
  expect(() => kubernetesLearnConfigFromEnv({ ...store, K8S_LEARN_S3_SECRET: 'Object_Store' }, '/data')).toThrow(
    "K8S_LEARN_S3_SECRET must be a Secret name (lower-case letters, digits, '-' and '.'), got 'Object_Store'",
  );
});

test('K8S_LEARN_* shape the Jobs; defaults are one node with one GPU', () => {
  const config = kubernetesLearnConfigFromEnv(
    {
      K8S_LEARN_IMAGE: 'reg/alignment/trainer:0.1.0',
      K8S_LEARN_NODES: '4',
      K8S_LEARN_GPUS_PER_NODE: '8',
      K8S_LEARN_NODE_SELECTOR: 'nvidia.com/gpu.present=true, pool=h100',
      K8S_LEARN_TOLERATIONS: '[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]',
      K8S_LEARN_CPU: '32:64',
      K8S_LEARN_MEMORY: '512Gi',
      DRO_SOLVER_ADDRESS: 'dro-solver:50054',
      K8S_LEARN_ENV_ARTIFACT_ROOTS: '/data/runs',
      SECRET_THING: 'not passed',
    },
    '/data',
  );
  expect(config.template).toEqual(expect.objectContaining({
    image: 'reg/alignment/trainer:0.1.0', nodes: 4, gpusPerNode: 8, dataMountPath: '/data', dataClaim: 'alignment-data',
    nodeSelector: { 'nvidia.com/gpu.present': 'true', pool: 'h100' },
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    resources: { cpuRequest: '32', cpuLimit: '64', memoryRequest: '512Gi', memoryLimit: '512Gi' },
    env: { DRO_SOLVER_ADDRESS: 'dro-solver:50054', ARTIFACT_ROOTS: '/data/runs' },
    serviceAccount: 'trainer', ttlSecondsAfterFinished: 3600, backoffLimit: 2,
  }));
  const defaults = kubernetesLearnConfigFromEnv({ K8S_LEARN_IMAGE: 'x:1' }, '/data');
  expect([defaults.template.nodes, defaults.template.gpusPerNode, defaults.pollMs]).toEqual([1, 1, 5000]);
});

test.each([
  [{}, 'LEARN_EXECUTOR=kubernetes needs K8S_LEARN_IMAGE'],
  [{ K8S_LEARN_NODES: '0' }, "K8S_LEARN_NODES must be an integer >= 1, got '0'"],
  [{ K8S_LEARN_GPUS_PER_NODE: 'eight' }, "K8S_LEARN_GPUS_PER_NODE must be an integer >= 0, got 'eight'"],
  [{ K8S_LEARN_NODE_SELECTOR: 'gpu' }, "K8S_LEARN_NODE_SELECTOR must be key=value,…, got 'gpu'"],
  [{ K8S_LEARN_TOLERATIONS: '{"key":"x"}' }, 'K8S_LEARN_TOLERATIONS must be a JSON array of objects'],
  [{ K8S_LEARN_TOLERATIONS: '[oops' }, 'K8S_LEARN_TOLERATIONS must be a JSON array of tolerations'],
  [{ 'K8S_LEARN_ENV_BAD-NAME': 'x' }, "K8S_LEARN_ENV_BAD-NAME: 'BAD-NAME' is not an environment variable name"],
  [{ K8S_LEARN_MEMORY: 'lots' }, "K8S_LEARN_MEMORY must be <request>[:<limit>] quantities (e.g. 4:8, 32Gi:64Gi), got 'lots'"],
])('bad setting %j: %s', (env, message) => {
  expect(() => kubernetesLearnConfigFromEnv({ K8S_LEARN_IMAGE: 'x:1', ...env, ...(message.includes('needs K8S_LEARN_IMAGE') ? { K8S_LEARN_IMAGE: '' } : {}) }, '/data')).toThrow(message);
});

test('in-cluster connection: service host and port, the token (read on every call), CA and namespace files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sa-'));
  try {
    fs.writeFileSync(path.join(dir, 'token'), 'token-1\n');
    fs.writeFileSync(path.join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\n');
    fs.writeFileSync(path.join(dir, 'namespace'), 'alignment');
    const c = connectionFromEnv({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, 1000, dir);
    expect([c.baseUrl, c.namespace, c.ca?.toString()]).toEqual(['https://10.96.0.1:443', 'alignment', '-----BEGIN CERTIFICATE-----\n']);
    expect(c.token?.()).toBe('token-1');
    fs.writeFileSync(path.join(dir, 'token'), 'token-2'); // the kubelet rotated the projected token
    expect(c.token?.()).toBe('token-2');
    expect(connectionFromEnv({ KUBERNETES_SERVICE_HOST: 'fd00::1' }, 1000, dir).baseUrl).toBe('https://[fd00::1]:443');
    expect(() => connectionFromEnv({}, 1000, dir)).toThrow('KUBERNETES_SERVICE_HOST is not set (not in a pod); set K8S_API_URL');
    expect(() => connectionFromEnv({ KUBERNETES_SERVICE_HOST: 'h' }, 1000, path.join(dir, 'none'))).toThrow("cannot read the service account's token");
    const override = connectionFromEnv({ K8S_API_URL: 'http://127.0.0.1:8001/', K8S_API_TOKEN: 't', K8S_NAMESPACE: 'ml' }, 1000, dir);
    expect([override.baseUrl, override.namespace, override.token?.()]).toEqual(['http://127.0.0.1:8001', 'ml', 't']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('in-cluster over https', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-tls-'));
  const certs = makeCertificates(path.join(dir, 'certs'), ['kubernetes']);
  const other = makeCertificates(path.join(dir, 'other'), ['kubernetes']);
  let api: FakeKubernetesApi;
  beforeAll(async () => {
    api = await new FakeKubernetesApi().start({ key: fs.readFileSync(certs.key('kubernetes')), cert: fs.readFileSync(certs.cert('kubernetes')) });
  });
  afterAll(async () => {
    await api.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const accountDir = (ca: string) => {
    const sa = fs.mkdtempSync(path.join(dir, 'sa-'));
    fs.writeFileSync(path.join(sa, 'token'), 'projected-token');
    fs.copyFileSync(ca, path.join(sa, 'ca.crt'));
    fs.writeFileSync(path.join(sa, 'namespace'), 'alignment');
    return sa;
  };

  test('verifies the API server with the service account CA and sends the token', async () => {
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) };
    const k8s = new KubernetesApi(connectionFromEnv(env, 2000, accountDir(certs.ca)));
    expect(await k8s.getJob('learn-x')).toBeUndefined();
    expect(api.requests.at(-1)).toEqual(expect.objectContaining({ method: 'GET', path: '/apis/batch/v1/namespaces/alignment/jobs/learn-x', authorization: 'Bearer projected-token' }));
  });

  test('refuses an API server whose certificate the CA did not sign', async () => {
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) };
    const k8s = new KubernetesApi(connectionFromEnv(env, 2000, accountDir(other.ca)));
    const seen = api.requests.length;
    await expect(k8s.getJob('learn-x')).rejects.toThrow(/^Kubernetes API: get Job learn-x: https:\/\/127\.0\.0\.1:\d+: .*(self.signed|unable to verify|certificate)/);
    expect(api.requests.length).toBe(seen);
  });
});
