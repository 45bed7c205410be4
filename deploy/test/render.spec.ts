// Renders every variant of deploy/k8s with the pinned kustomize (tools/deploy/render.sh), validates every object
// against the Kubernetes schemas offline, and checks what a reviewer of the manifests would check by hand.
import { DEFAULT_PORTS } from '@alignment/service-kit';
import {
  APP_NAMESPACE,
  PART_OF,
  connectionAllowed,
  effectiveEnv,
  find,
  mainContainer,
  parseImage,
  quantity,
  renderAll,
  resolveAddress,
  serviceWorkloads,
  validateSchema,
  workloads,
  type Endpoint,
  type INetworkPolicy,
  type K8sObject,
  type Rendered,
  type Workload,
} from './manifests';

type ServiceName = keyof typeof DEFAULT_PORTS;
const SERVICE_NAMES = Object.keys(DEFAULT_PORTS) as ServiceName[];
/** The drain every service does after SIGTERM unless configured otherwise (service-kit; trainer server.py). */
const DEFAULT_DRAIN_S = 10;
/** Room after the drain for flushing traces and exiting. */
const GRACE_MARGIN_S = 5;
const OTLP_ENDPOINT = 'http://otel-collector:4317';
/** The plaintext port that serves grpc.health.v1 only (HEALTH_PORT), for the probes. */
const HEALTH_PORT = 8081;
/**
 * Where each service keeps its files on the data volume. The coordinator's DATA_DIR is the shared root (its run
 * database under coordinator/, every stage's outputs under runs/: services/coordinator/src/config.ts); the others
 * get a directory of their own. The DRO solver keeps nothing.
 */
const DATA_DIRS: Record<ServiceName, string | undefined> = {
  coordinator: '/data',
  generator: '/data/generator',
  judge: '/data/judge',
  'dro-solver': undefined,
  trainer: '/data/trainer',
};

const VARIANTS = [
  'local-cpu', 'local-cpu+tracing', 'gpu', 'gpu+tracing', 'gpu+lm-on-gpu', 'gpu+tracing+lm-on-gpu', 'gpu+learn-as-jobs', 'gpu+tracing+learn-as-jobs', 'local-cpu+object-store', 'gpu+object-store', 'gpu+learn-as-jobs+object-store',
];
const hasPart = (variant: string, part: string) => variant.split('+').includes(part);
/** The services a variant runs: with learn-as-jobs, LEARN stages are Jobs the coordinator creates, and no trainer. */
const servicesOf = (variant: string) => SERVICE_NAMES.filter((s) => s !== 'trainer' || !hasPart(variant, 'learn-as-jobs'));

let rendered: Rendered;
const objectsOf = (variant: string): K8sObject[] => {
  const objects = rendered.variants.get(variant);
  if (!objects) throw new Error(`variant ${variant} was not rendered`);
  return objects;
};

beforeAll(() => {
  // The first run on a machine installs kustomize with `go install` (one to two minutes); later runs take a second.
  rendered = renderAll();
}, 600_000);

test('render.sh renders every overlay with and without its components, and the data loader', () => {
  expect([...rendered.variants.keys()].sort()).toEqual([...VARIANTS, 'data-loader'].sort());
  for (const [variant, objects] of rendered.variants) {
    expect({ variant, empty: objects.length === 0 }).toEqual({ variant, empty: false });
  }
  expect(rendered.kustomizeVersion).toMatch(/^v5\.\d+\.\d+$/);
});

describe.each([...VARIANTS, 'data-loader'])('%s', (variant) => {
  test('every object is valid against the Kubernetes schema', () => {
    const failures: string[] = [];
    for (const object of objectsOf(variant)) {
      try {
        validateSchema(object);
      } catch (error) {
        failures.push(`${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('everything lives in the alignment namespace', () => {
    for (const object of objectsOf(variant)) {
      if (object.kind === 'Namespace') continue;
      expect({ object: `${object.kind}/${object.metadata.name}`, namespace: object.metadata.namespace })
        .toEqual({ object: `${object.kind}/${object.metadata.name}`, namespace: APP_NAMESPACE });
    }
  });

  test('every container has CPU and memory requests and limits, limits at least the requests', () => {
    for (const w of workloads(objectsOf(variant))) {
      for (const c of [...(w.spec.initContainers ?? []), ...w.spec.containers]) {
        const where = `${w.app}/${c.name}`;
        for (const resource of ['cpu', 'memory']) {
          const request = c.resources?.requests?.[resource];
          const limit = c.resources?.limits?.[resource];
          expect({ where, resource, request: request !== undefined, limit: limit !== undefined })
            .toEqual({ where, resource, request: true, limit: true });
          expect(quantity(limit!)).toBeGreaterThanOrEqual(quantity(request!));
        }
      }
    }
  });

  test('every pod meets the restricted Pod Security Standard and mounts no API token unless it calls the API', () => {
    const objects = objectsOf(variant);
    for (const w of workloads(objects)) {
      const pod = w.spec.securityContext ?? {};
      expect({ app: w.app, hostNetwork: w.spec.hostNetwork, hostPID: w.spec.hostPID, hostIPC: w.spec.hostIPC })
        .toEqual({ app: w.app, hostNetwork: undefined, hostPID: undefined, hostIPC: undefined });
      for (const volume of w.spec.volumes ?? []) {
        const types = Object.keys(volume).filter((k) => k !== 'name');
        expect(['configMap', 'emptyDir', 'persistentVolumeClaim', 'secret', 'projected', 'downwardAPI'])
          .toEqual(expect.arrayContaining(types));
      }
      const account = w.spec.serviceAccountName
        ? (find(objects, 'ServiceAccount', w.spec.serviceAccountName) as { automountServiceAccountToken?: boolean })
        : undefined;
      if (w.spec.serviceAccountName) expect({ app: w.app, account: !!account }).toEqual({ app: w.app, account: true });
      expect({ app: w.app, automount: w.spec.automountServiceAccountToken ?? account?.automountServiceAccountToken })
        .toEqual({ app: w.app, automount: false });
      // An API token only where something calls the API: the coordinator that creates LEARN Jobs (projected).
      const token = (w.spec.volumes ?? []).some((v) => v.projected?.sources?.some((source) => source.serviceAccountToken));
      expect({ app: w.app, token }).toEqual({ app: w.app, token: w.app === 'coordinator' && hasPart(variant, 'learn-as-jobs') });
      for (const c of [...(w.spec.initContainers ?? []), ...w.spec.containers]) {
        const own = c.securityContext ?? {};
        expect({
          where: `${w.app}/${c.name}`,
          runAsNonRoot: own.runAsNonRoot ?? pod.runAsNonRoot,
          rootUser: (own.runAsUser ?? pod.runAsUser) === 0,
          readOnlyRootFilesystem: own.readOnlyRootFilesystem,
          allowPrivilegeEscalation: own.allowPrivilegeEscalation,
          privileged: own.privileged ?? false,
          dropAll: own.capabilities?.drop?.includes('ALL'),
          added: own.capabilities?.add ?? [],
          seccomp: (own.seccompProfile ?? pod.seccompProfile)?.type,
        }).toEqual({
          where: `${w.app}/${c.name}`,
          runAsNonRoot: true,
          rootUser: false,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          privileged: false,
          dropAll: true,
          added: [],
          seccomp: 'RuntimeDefault',
        });
      }
    }
  });

  test('every image is pinned by a version tag (never latest); the application images share one tag', () => {
    const appTags = new Set<string>();
    for (const w of workloads(objectsOf(variant))) {
      for (const c of [...(w.spec.initContainers ?? []), ...w.spec.containers]) {
        const image = parseImage(c.image ?? '');
        expect({ image: c.image, pinned: !!image.digest || /^v?\d+(\.\d+)+/.test(image.tag ?? '') })
          .toEqual({ image: c.image, pinned: true });
        expect(image.tag).not.toBe('latest');
        if (w.labels[PART_OF] === 'alignment') {
          // The LEARN Jobs run the trainer's image.
          expect(image.repository.split('/').pop()).toBe(w.app === 'learn-job' ? 'trainer' : w.app);
          appTags.add(image.tag ?? image.digest ?? '');
        }
      }
    }
    expect(appTags.size).toBeLessThanOrEqual(1);
  });

  test('every Service selects a workload that listens on its target port', () => {
    const objects = objectsOf(variant);
    for (const service of objects.filter((o) => o.kind === 'Service')) {
      const ports = (service.spec as { ports: { port: number }[] }).ports;
      for (const { port } of ports) {
        expect(() => resolveAddress(objects, APP_NAMESPACE, `${service.metadata.name}:${port}`)).not.toThrow();
      }
    }
    for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
      const spec = deployment.spec as { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } };
      expect(spec.template.metadata.labels).toEqual(expect.objectContaining(spec.selector.matchLabels));
    }
  });
});

describe.each(VARIANTS)('%s: the services', (variant) => {
  const services = () => serviceWorkloads(objectsOf(variant));

  test('all five services run, each once (four with LEARN as Jobs)', () => {
    expect(services().map((w) => w.app).sort()).toEqual(servicesOf(variant).sort());
  });

  // The service port speaks TLS, which kubelet gRPC probes cannot: they ask the plaintext health-only port.
  test('startup, readiness and liveness probes are gRPC health checks on the health-only port', () => {
    for (const w of services()) {
      const c = mainContainer(w);
      const port = DEFAULT_PORTS[w.app as ServiceName];
      const grpcPort = c.ports?.find((p) => p.name === 'grpc')?.containerPort;
      const healthPort = c.ports?.find((p) => p.name === 'health')?.containerPort;
      const env = effectiveEnv(objectsOf(variant), w.namespace, c);
      expect({ app: w.app, grpcPort, PORT: env.PORT, healthPort, HEALTH_PORT: env.HEALTH_PORT })
        .toEqual({ app: w.app, grpcPort: port, PORT: String(port), healthPort: HEALTH_PORT, HEALTH_PORT: String(HEALTH_PORT) });
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
        // No `service` field: the probe asks for the '' key, which every service registers.
        expect({ app: w.app, probe, grpc: c[probe]?.grpc, httpGet: c[probe]?.httpGet, exec: c[probe]?.exec })
          .toEqual({ app: w.app, probe, grpc: { port: HEALTH_PORT }, httpGet: undefined, exec: undefined });
      }
    }
  });

  test('the termination grace period covers the drain, and stays short', () => {
    for (const w of services()) {
      const env = effectiveEnv(objectsOf(variant), w.namespace, mainContainer(w));
      const drain = Number(env.TRAINER_SHUTDOWN_GRACE_S ?? DEFAULT_DRAIN_S);
      const grace = w.spec.terminationGracePeriodSeconds;
      expect({ app: w.app, grace }).toEqual({ app: w.app, grace: drain + GRACE_MARGIN_S });
      expect(grace).toBeLessThanOrEqual(60);
    }
  });

  test('writes go to /tmp (emptyDir) and the shared data volume only', () => {
    const objects = objectsOf(variant);
    expect(find(objects, 'PersistentVolumeClaim', 'alignment-data')).toBeDefined();
    for (const w of services()) {
      const c = mainContainer(w);
      const volumeOf = (mountPath: string) => {
        const mount = c.volumeMounts?.find((m) => m.mountPath === mountPath);
        return mount && w.spec.volumes?.find((v) => v.name === mount.name);
      };
      expect({ app: w.app, tmp: !!volumeOf('/tmp')?.emptyDir }).toEqual({ app: w.app, tmp: true });
      // The run database: a ReadWriteOnce volume of the coordinator's own, never the shared (network) volume.
      const db = volumeOf('/data/coordinator')?.persistentVolumeClaim?.claimName;
      expect({ app: w.app, db }).toEqual({ app: w.app, db: w.app === 'coordinator' ? 'coordinator-db' : undefined });
      if (db) expect((find(objects, 'PersistentVolumeClaim', db)?.spec as { accessModes: string[] }).accessModes).toEqual(['ReadWriteOnce']);
      const data = volumeOf('/data')?.persistentVolumeClaim?.claimName;
      // The DRO solver is pure computation: it gets no data volume.
      expect({ app: w.app, data }).toEqual({ app: w.app, data: w.app === 'dro-solver' ? undefined : 'alignment-data' });
      const env = effectiveEnv(objects, w.namespace, c);
      expect({ app: w.app, DATA_DIR: env.DATA_DIR }).toEqual({ app: w.app, DATA_DIR: DATA_DIRS[w.app as ServiceName] });
      expect(env.HF_HUB_OFFLINE).toBe('1');
      // Issue 12: confined paths; nothing a caller names may overwrite the run database under /data/coordinator.
      if (w.app !== 'dro-solver') {
        expect({ app: w.app, roots: env.ARTIFACT_ROOTS, readOnly: env.READ_ONLY_ROOTS }).toEqual({
          app: w.app,
          roots: `/data/runs:${w.app === 'coordinator' ? '/data/coordinator' : DATA_DIRS[w.app as ServiceName]}`,
          readOnly: '/data/models:/data/datasets',
        });
      }
    }
  });

  test('each *_ADDRESS points at the Service and port of the service it names', () => {
    const objects = objectsOf(variant);
    const wiring: Record<string, Record<string, string>> = {};
    for (const w of services()) {
      const env = effectiveEnv(objects, w.namespace, mainContainer(w));
      for (const [name, value] of Object.entries(env).filter(([k]) => k.endsWith('_ADDRESS'))) {
        const target = name.replace(/_ADDRESS$/, '').toLowerCase().replace(/_/g, '-') as ServiceName;
        const { workloads: reached, containerPort } = resolveAddress(objects, w.namespace, value);
        expect({ from: w.app, name, reached: reached.map((r) => r.app), containerPort })
          .toEqual({ from: w.app, name, reached: [target], containerPort: DEFAULT_PORTS[target] });
        (wiring[w.app] ??= {})[name] = value;
      }
    }
    // The data flow of docs/architecture.md: the coordinator calls the generator, judge and trainer; the trainer calls the
    // DRO solver.
    // With LEARN as Jobs the coordinator calls no trainer; it hands DRO_SOLVER_ADDRESS on to the Jobs' pods.
    const jobs = hasPart(variant, 'learn-as-jobs');
    expect(Object.keys(wiring.coordinator ?? {}).sort())
      .toEqual(jobs ? ['DRO_SOLVER_ADDRESS', 'GENERATOR_ADDRESS', 'JUDGE_ADDRESS'] : ['GENERATOR_ADDRESS', 'JUDGE_ADDRESS', 'TRAINER_ADDRESS']);
    expect(Object.keys(wiring.trainer ?? {})).toEqual(jobs ? [] : ['DRO_SOLVER_ADDRESS']);
  });

  test('generator and judge Services are headless, so a gRPC client can balance across replicas', () => {
    for (const name of ['generator', 'judge']) {
      expect((find(objectsOf(variant), 'Service', name)?.spec as { clusterIP?: string }).clusterIP).toBe('None');
    }
  });

  test('tracing: every service exports OTLP to the collector, and only with the tracing component', () => {
    const objects = objectsOf(variant);
    for (const w of services()) {
      const env = effectiveEnv(objects, w.namespace, mainContainer(w));
      if (hasPart(variant, 'tracing')) {
        expect({ app: w.app, exporter: env.OTEL_TRACES_EXPORTER, endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT })
          .toEqual({ app: w.app, exporter: 'otlp', endpoint: OTLP_ENDPOINT });
      } else {
        expect({ app: w.app, exporter: env.OTEL_TRACES_EXPORTER }).toEqual({ app: w.app, exporter: 'none' });
      }
    }
    if (hasPart(variant, 'tracing')) {
      expect(resolveAddress(objects, APP_NAMESPACE, OTLP_ENDPOINT).workloads.map((w) => w.app)).toEqual(['otel-collector']);
      const config = find(objects, 'ConfigMap', 'otel-collector-config')?.data as Record<string, string>;
      expect(config['collector.yaml']).toContain('endpoint: jaeger:4317');
      expect(resolveAddress(objects, APP_NAMESPACE, 'jaeger:4317').workloads.map((w) => w.app)).toEqual(['jaeger']);
    } else {
      expect(find(objects, 'Deployment', 'otel-collector')).toBeUndefined();
    }
  });
});

describe('local-cpu', () => {
  test.each(VARIANTS.filter((v) => v.startsWith('local-cpu')))('%s: one replica each, a ReadWriteOnce volume, no GPU', (variant) => {
    const objects = objectsOf(variant);
    for (const d of objects.filter((o) => o.kind === 'Deployment' && o.metadata.labels?.[PART_OF] === 'alignment')) {
      expect({ name: d.metadata.name, replicas: (d.spec as { replicas?: number }).replicas })
        .toEqual({ name: d.metadata.name, replicas: 1 });
    }
    expect((find(objects, 'PersistentVolumeClaim', 'alignment-data')?.spec as { accessModes: string[] }).accessModes)
      .toEqual(['ReadWriteOnce']);
    expect(JSON.stringify(objects)).not.toContain('nvidia.com/gpu');
    expect(objects.some((o) => o.kind === 'Job')).toBe(false);
  });
});

describe('gpu', () => {
  const gpuVariants = VARIANTS.filter((v) => v.startsWith('gpu'));

  test.each(gpuVariants.filter((v) => !hasPart(v, 'learn-as-jobs')))('%s: the trainer is a Job on a GPU node, requesting one GPU; no trainer Deployment', (variant) => {
    const objects = objectsOf(variant);
    expect(find(objects, 'Deployment', 'trainer')).toBeUndefined();
    const job = find(objects, 'Job', 'trainer');
    expect(job).toBeDefined();
    const trainer = serviceWorkloads(objects).find((w) => w.app === 'trainer')!;
    expect(trainer.object.kind).toBe('Job');
    expect(quantity(mainContainer(trainer).resources!.limits!['nvidia.com/gpu'])).toBe(1);
    expect(Object.keys(trainer.spec.nodeSelector ?? {}).some((k) => k.startsWith('nvidia.com/'))).toBe(true);
    expect(trainer.spec.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'nvidia.com/gpu' })]));
    // A crash or a drained node makes a new pod that resumes from the last checkpoint on the data volume: the pod
    // never exits 0 (which would complete the Job), and disruptions do not count against the backoff limit.
    expect(trainer.spec.restartPolicy).toBe('Never');
    expect(JSON.stringify((job!.spec as { podFailurePolicy?: unknown }).podFailurePolicy)).toContain('DisruptionTarget');
    const command = mainContainer(trainer).command ?? [];
    expect(command.slice(0, 2)).toEqual(['python', '-c']);
    expect(command[2]).toMatch(/from alignment_trainer\.server import main; main\(\); sys\.exit\([1-9]\d*\)$/);
  });

  test.each(gpuVariants)('%s: two generator and two judge replicas; a ReadWriteMany volume', (variant) => {
    const objects = objectsOf(variant);
    for (const name of ['generator', 'judge']) {
      expect((find(objects, 'Deployment', name)?.spec as { replicas: number }).replicas).toBe(2);
    }
    expect((find(objects, 'PersistentVolumeClaim', 'alignment-data')?.spec as { accessModes: string[] }).accessModes)
      .toEqual(['ReadWriteMany']);
  });

  test.each(gpuVariants)('%s: generator and judge take a GPU only with the lm-on-gpu component', (variant) => {
    for (const w of serviceWorkloads(objectsOf(variant)).filter((x) => ['generator', 'judge'].includes(x.app))) {
      const gpus = mainContainer(w).resources?.limits?.['nvidia.com/gpu'];
      expect({ app: w.app, gpus: gpus === undefined ? 0 : quantity(gpus) })
        .toEqual({ app: w.app, gpus: hasPart(variant, 'lm-on-gpu') ? 1 : 0 });
    }
  });
});

describe('network policies', () => {
  const endpoint = (w: Workload, objects: K8sObject[]): Endpoint => {
    const ns = find(objects, 'Namespace', w.namespace);
    return {
      name: w.app,
      namespace: w.namespace,
      labels: w.labels,
      namespaceLabels: { 'kubernetes.io/metadata.name': w.namespace, ...(ns?.metadata.labels ?? {}) },
    };
  };
  const kubeDns: Endpoint = {
    name: 'kube-dns',
    namespace: 'kube-system',
    labels: { 'k8s-app': 'kube-dns' },
    namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' },
  };
  const outsider: Endpoint = {
    name: 'outsider',
    namespace: 'default',
    labels: { app: 'coordinator' },
    namespaceLabels: { 'kubernetes.io/metadata.name': 'default' },
  };

  /** The calls the application makes (docs/architecture.md), and nothing else. */
  const expected = (from: Endpoint, to: Endpoint, port: number): boolean => {
    if (from.namespace !== APP_NAMESPACE) return false;
    if (to.name === 'coordinator') return port === DEFAULT_PORTS.coordinator; // the public API, from the namespace
    const calls: [string, string, number][] = [
      ['coordinator', 'generator', DEFAULT_PORTS.generator],
      ['coordinator', 'judge', DEFAULT_PORTS.judge],
      ['coordinator', 'trainer', DEFAULT_PORTS.trainer],
      ['trainer', 'dro-solver', DEFAULT_PORTS['dro-solver']],
      ['learn-job', 'dro-solver', DEFAULT_PORTS['dro-solver']],
      ['otel-collector', 'jaeger', 4317],
    ];
    if (calls.some(([f, t, p]) => f === from.name && t === to.name && p === port)) return true;
    return to.name === 'otel-collector' && port === 4317 && from.labels[PART_OF] === 'alignment';
  };

  // Issue 12: the policies were an optional component; they are part of base, so every variant has them.
  test.each(VARIANTS)('%s: default deny, then exactly the data flow', (variant) => {
    const objects = objectsOf(variant);
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as (K8sObject & INetworkPolicy)[];
    const denyAll = policies.find((p) => p.metadata.name === 'deny-all');
    expect(denyAll?.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });

    const pods = workloads(objects).map((w) => endpoint(w, objects));
    const mismatches: string[] = [];
    for (const from of [...pods, outsider]) {
      // Every pod of the namespace can resolve names.
      if (from !== outsider) {
        expect({ from: from.name, dns: connectionAllowed(policies, from, kubeDns, 53, 'UDP') }).toEqual({ from: from.name, dns: true });
      }
      for (const to of pods) {
        if (to === from) continue;
        const ports = workloads(objects).find((w) => w.app === to.name)!.spec.containers.flatMap((c) => c.ports ?? []);
        for (const { containerPort } of ports) {
          const allowed = connectionAllowed(policies, from, to, containerPort);
          if (allowed !== expected(from, to, containerPort)) {
            mismatches.push(`${from.namespace}/${from.name} -> ${to.name}:${containerPort} is ${allowed ? 'allowed' : 'denied'}`);
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

});

describe('data loader', () => {
  test('mounts the overlays\' data volume and does nothing else', () => {
    const [pod] = workloads(objectsOf('data-loader'));
    expect(pod.object.kind).toBe('Pod');
    const claim = pod.spec.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
    expect(claim).toBe('alignment-data');
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.spec.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(pod.spec.containers[0].volumeMounts?.map((m) => m.mountPath).sort()).toEqual(['/data', '/tmp']);
  });
});
