// The object-store component: models in object storage (MODEL_STORE_URI) with the services' S3 settings from Secret
// `object-store` (made by the secretGenerator its README gives; render.sh feeds it the example env file), the
// stores' prefix in S3_ARTIFACT_ROOTS, and egress to the store. With learn-as-jobs, the Job the coordinator creates
// (built by its own code from its rendered environment, manifests.ts) publishes to the store with the same Secret.
import { modelStoreFromEnv } from '../../services/coordinator/src/run/model-store';
import {
  LEARN_JOB_APP,
  connectionAllowed,
  effectiveEnv,
  find,
  mainContainer,
  renderAll,
  workloads,
  type Endpoint,
  type INetworkPolicy,
  type K8sObject,
  type Rendered,
  type Workload,
} from './manifests';

const VARIANTS = ['local-cpu+object-store', 'gpu+object-store', 'gpu+learn-as-jobs+object-store'];
const SECRET_KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_REGION', 'AWS_SECRET_ACCESS_KEY', 'S3_ENDPOINT_URL'];
/** The services that write or read models. */
const MODEL_USERS = ['coordinator', 'generator', 'judge', 'trainer', LEARN_JOB_APP];
let rendered: Rendered;
const objectsOf = (variant: string) => rendered.variants.get(variant)!;
const endpoint = (w: Workload): Endpoint => ({ name: w.app, namespace: w.namespace, labels: w.labels, namespaceLabels: { 'kubernetes.io/metadata.name': w.namespace } });
/** The object store, outside the cluster's pods (a cloud endpoint or a server in another namespace). */
const store: Endpoint = { name: 'object-store', namespace: 'storage', labels: { app: 'minio' }, namespaceLabels: { 'kubernetes.io/metadata.name': 'storage' } };
const policiesOf = (objects: K8sObject[]) => objects.filter((o) => o.kind === 'NetworkPolicy') as (K8sObject & INetworkPolicy)[];

beforeAll(() => {
  rendered = renderAll();
}, 600_000);

test('only the object-store variants have the Secret, the store and its egress', () => {
  for (const [variant, objects] of rendered.variants) {
    const has = VARIANTS.includes(variant);
    expect({ variant, secret: !!find(objects, 'Secret', 'object-store'), policy: !!find(objects, 'NetworkPolicy', 'object-store-egress') }).toEqual({ variant, secret: has, policy: has });
  }
});

describe.each(VARIANTS)('%s', (variant) => {
  const users = () => workloads(objectsOf(variant)).filter((w) => MODEL_USERS.includes(w.app));

  test('the services that handle models get the S3 settings from the Secret, and the coordinator a store under their roots', () => {
    const objects = objectsOf(variant);
    const apps = users().map((w) => w.app).sort();
    expect(apps).toEqual(variant.includes('learn-as-jobs') ? ['coordinator', 'generator', 'judge', LEARN_JOB_APP] : ['coordinator', 'generator', 'judge', 'trainer']);
    for (const w of users()) {
      const container = w.app === LEARN_JOB_APP ? w.spec.containers[0] : mainContainer(w);
      expect({ app: w.app, secrets: (container.envFrom ?? []).filter((s) => s.secretRef).map((s) => s.secretRef!.name) }).toEqual({ app: w.app, secrets: ['object-store'] });
      const env = effectiveEnv(objects, w.namespace, container);
      expect({ app: w.app, keys: SECRET_KEYS.filter((k) => env[k]) }).toEqual({ app: w.app, keys: SECRET_KEYS });
      expect({ app: w.app, roots: env.S3_ARTIFACT_ROOTS }).toEqual({ app: w.app, roots: 's3://alignment-models/runs' });
    }
    const coordinator = users().find((w) => w.app === 'coordinator')!;
    // The coordinator's own check (it refuses to start with a store outside S3_ARTIFACT_ROOTS) passes.
    expect(modelStoreFromEnv(effectiveEnv(objects, coordinator.namespace, mainContainer(coordinator)))).toBe('s3://alignment-models/runs');
    // The other services neither get nor need it; the DRO solver gets no S3 settings at all.
    const solver = workloads(objects).find((w) => w.app === 'dro-solver')!;
    expect(mainContainer(solver).envFrom?.some((s) => s.secretRef)).toBeFalsy();
  });

  test('credentials are only in the Secret: no manifest names a Secret value as a literal', () => {
    const objects = objectsOf(variant);
    const secret = find(objects, 'Secret', 'object-store') as K8sObject & { data: Record<string, string> };
    expect(Object.keys(secret.data).sort()).toEqual(SECRET_KEYS);
    const values = Object.values(secret.data).map((v) => Buffer.from(v, 'base64').toString('utf8'));
    const rest = JSON.stringify(objects.filter((o) => o !== secret));
    for (const value of values) expect({ value, literal: rest.includes(value) }).toEqual({ value, literal: false });
    expect(rest).not.toMatch(/AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID/);
  });

  test('network: the services that handle models reach the store on 443, no other pod and no other port', () => {
    const objects = objectsOf(variant);
    const policies = policiesOf(objects);
    for (const w of workloads(objects).filter((x) => x.labels['app.kubernetes.io/part-of'] === 'alignment')) {
      const allowed = MODEL_USERS.includes(w.app);
      expect({ app: w.app, https: connectionAllowed(policies, endpoint(w), store, 443) }).toEqual({ app: w.app, https: allowed });
      expect({ app: w.app, other: connectionAllowed(policies, endpoint(w), store, 9000) }).toEqual({ app: w.app, other: false });
    }
  });
});

test('without the component, no service reaches the store (only the coordinator with learn-as-jobs, on the API server port)', () => {
  for (const variant of ['local-cpu', 'gpu', 'gpu+learn-as-jobs']) {
    const objects = objectsOf(variant);
    for (const w of workloads(objects)) {
      const expected = variant === 'gpu+learn-as-jobs' && w.app === 'coordinator';
      expect({ variant, app: w.app, https: connectionAllowed(policiesOf(objects), endpoint(w), store, 443) }).toEqual({ variant, app: w.app, https: expected });
    }
  }
});

test('with learn-as-jobs, the LEARN Job trains on the data volume and publishes under MODEL_STORE_URI', () => {
  const job = workloads(objectsOf('gpu+learn-as-jobs+object-store')).find((w) => w.app === LEARN_JOB_APP)!;
  const command = job.spec.containers[0].command!;
  expect(command.slice(command.indexOf('--output'))).toEqual([
    '--output', '/data/runs/run-1/round-0/learn/attempt-0', '--work-dir', '/data/runs/run-1/round-0/learn/attempt-0.work',
    '--publish-uri', 's3://alignment-models/runs/run-1/round-0/learn/attempt-0',
  ]);
});
