// The learn-as-jobs component: the coordinator creates a Job per LEARN stage (LEARN_EXECUTOR=kubernetes) instead of
// calling a trainer service that holds GPUs through every stage. manifests.ts adds that Job, built by the
// coordinator's code from its rendered environment, to the variant, so render.spec.ts validates it like every other
// object; this file checks what the component itself promises.
import { SERVICE_ACCOUNT_DIR } from '../../services/coordinator/src/clients/kubernetes/api-client';
import {
  APP_NAMESPACE,
  LEARN_JOB_APP,
  connectionAllowed,
  effectiveEnv,
  find,
  mainContainer,
  parseImage,
  renderAll,
  workloads,
  type Endpoint,
  type INetworkPolicy,
  type K8sObject,
  type Rendered,
  type Workload,
} from './manifests';

const VARIANTS = ['gpu+learn-as-jobs', 'gpu+tracing+learn-as-jobs', 'gpu+learn-as-jobs+object-store'];
let rendered: Rendered;
const objectsOf = (variant: string) => rendered.variants.get(variant)!;
const endpoint = (w: Workload): Endpoint => ({
  name: w.app,
  namespace: w.namespace,
  labels: w.labels,
  namespaceLabels: { 'kubernetes.io/metadata.name': w.namespace },
});

beforeAll(() => {
  rendered = renderAll();
}, 600_000);

test('only the learn-as-jobs variants run LEARN as Jobs', () => {
  for (const [variant, objects] of rendered.variants) {
    const learnJobs = workloads(objects).filter((w) => w.app === LEARN_JOB_APP);
    expect({ variant, learnJobs: learnJobs.length }).toEqual({ variant, learnJobs: VARIANTS.includes(variant) ? 1 : 0 });
  }
});

describe.each(VARIANTS)('%s', (variant) => {
  const job = () => workloads(objectsOf(variant)).find((w) => w.app === LEARN_JOB_APP)!;

  test('no trainer service: no trainer Job, Deployment, Service or network policy rule, and no TRAINER_ADDRESS', () => {
    const objects = objectsOf(variant);
    for (const kind of ['Job', 'Deployment', 'Service', 'NetworkPolicy']) expect({ kind, trainer: find(objects, kind, 'trainer') }).toEqual({ kind, trainer: undefined });
    const coordinator = workloads(objects).find((w) => w.app === 'coordinator')!;
    const env = effectiveEnv(objects, coordinator.namespace, mainContainer(coordinator));
    expect([env.LEARN_EXECUTOR, env.TRAINER_ADDRESS]).toEqual(['kubernetes', undefined]);
    // No policy lets anything reach or be reached as the trainer (the coordinator's egress to it went too).
    expect(JSON.stringify(objects.filter((o) => o.kind === 'NetworkPolicy'))).not.toContain('"app":"trainer"');
  });

  test('the LEARN Job: an Indexed Job of the trainer image on GPU nodes, the data volume, the trainer identity', () => {
    const objects = objectsOf(variant);
    const w = job();
    const spec = w.object.spec as { completionMode: string; parallelism: number; ttlSecondsAfterFinished: number };
    expect([spec.completionMode, spec.parallelism]).toEqual(['Indexed', 1]);
    expect(spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    const c = w.spec.containers[0];
    expect(c.resources?.limits?.['nvidia.com/gpu']).toBe('1');
    expect(w.spec.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(w.spec.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    // The release's image: the coordinator's tag (the base sets one tag for all).
    const coordinator = workloads(objects).find((x) => x.app === 'coordinator')!;
    expect(parseImage(c.image!)).toEqual({ repository: 'alignment/trainer', tag: parseImage(mainContainer(coordinator).image!).tag, digest: undefined });
    // Mounted at the coordinator's DATA_DIR, from the claim the services share; the ServiceAccount and Secret exist.
    const data = w.spec.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName;
    expect(find(objects, 'PersistentVolumeClaim', data!)).toBeDefined();
    expect(c.volumeMounts?.find((m) => m.name === 'data')?.mountPath).toBe('/data');
    expect(find(objects, 'ServiceAccount', w.spec.serviceAccountName!)).toBeDefined();
    expect(w.spec.volumes?.find((v) => v.name === 'tls')?.secret?.secretName).toBe('trainer-tls');
    expect(c.command?.slice(0, 3)).toEqual(['python', '-m', 'accelerate.commands.launch']);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    expect(env.DRO_SOLVER_ADDRESS).toBe('dro-solver:50054');
    expect([env.ARTIFACT_ROOTS, env.READ_ONLY_ROOTS, env.HF_HUB_OFFLINE]).toEqual(['/data/runs', '/data/models:/data/datasets', '1']);
    expect(env.OTEL_TRACES_EXPORTER).toBe(variant.includes('tracing') ? 'otlp' : 'none');
  });

  test('RBAC: the coordinator may create, read, list and delete Jobs, create Services and list pods, nothing more', () => {
    const objects = objectsOf(variant);
    const role = find(objects, 'Role', 'coordinator-learn-jobs') as K8sObject & { rules: unknown[] };
    expect(role.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get', 'list', 'delete'] },
      { apiGroups: [''], resources: ['services'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    ]);
    const binding = find(objects, 'RoleBinding', 'coordinator-learn-jobs') as K8sObject & { roleRef: unknown; subjects: unknown[] };
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'coordinator-learn-jobs' });
    const coordinator = workloads(objects).find((w) => w.app === 'coordinator')!;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: coordinator.spec.serviceAccountName, namespace: APP_NAMESPACE }]);
  });

  test('the coordinator gets its API token, CA and namespace where the in-cluster client reads them', () => {
    const coordinator = workloads(objectsOf(variant)).find((w) => w.app === 'coordinator')!;
    const mount = mainContainer(coordinator).volumeMounts?.find((m) => m.mountPath === SERVICE_ACCOUNT_DIR);
    expect(mount?.readOnly).toBe(true);
    const sources = coordinator.spec.volumes?.find((v) => v.name === mount!.name)?.projected?.sources ?? [];
    expect(sources.map((s) => s.serviceAccountToken?.path ?? s.configMap?.items?.[0].path ?? s.downwardAPI?.items?.[0].path)).toEqual(['token', 'ca.crt', 'namespace']);
  });

  test('network: the coordinator reaches the API server; LEARN pods reach the DRO solver and each other, no one else', () => {
    const objects = objectsOf(variant);
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as (K8sObject & INetworkPolicy)[];
    const pods = workloads(objects);
    const of = (app: string) => endpoint(pods.find((w) => w.app === app)!);
    const apiServer: Endpoint = { name: 'kube-apiserver', namespace: 'default', labels: { component: 'apiserver' }, namespaceLabels: { 'kubernetes.io/metadata.name': 'default' } };
    expect(connectionAllowed(policies, of('coordinator'), apiServer, 443)).toBe(true);
    // object-store opens 443 to any address for the pods that handle models (object-store.spec.ts): the API server's
    // address too, which they cannot use without a token (the coordinator alone gets one).
    const anyHttps = variant.includes('object-store');
    expect(connectionAllowed(policies, of('generator'), apiServer, 443)).toBe(anyHttps);
    expect(connectionAllowed(policies, of(LEARN_JOB_APP), apiServer, 443)).toBe(anyHttps);
    expect(connectionAllowed(policies, of('dro-solver'), apiServer, 443)).toBe(false);
    expect(connectionAllowed(policies, of(LEARN_JOB_APP), of('dro-solver'), 50054)).toBe(true);
    // Rendezvous and NCCL between the ranks of a multi-node Job (pod 0 and another pod of the same Job).
    const rank1 = { ...of(LEARN_JOB_APP), name: 'learn-job-1' };
    expect(connectionAllowed(policies, rank1, of(LEARN_JOB_APP), 29500)).toBe(true);
    expect(connectionAllowed(policies, rank1, of(LEARN_JOB_APP), 41234)).toBe(true);
    expect(connectionAllowed(policies, of('generator'), of(LEARN_JOB_APP), 29500)).toBe(false);
    expect(connectionAllowed(policies, of(LEARN_JOB_APP), of('generator'), 50052)).toBe(false);
  });
});
