// Reading rendered manifests: render every variant with tools/deploy/render.sh, validate objects against the
// Kubernetes schemas (kubernetes-models, offline), and answer the questions the specs ask of them (a container's
// effective environment, which workload a Service reaches, whether network policies let one pod call another).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubernetesLearnConfigFromEnv } from '../../services/coordinator/src/clients/kubernetes/learn-config';
import { learnJobManifest, learnJobName } from '../../services/coordinator/src/clients/kubernetes/job-manifest';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import type { INetworkPolicyPort } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';

export type { IContainer, IPodSpec, IService, INetworkPolicy };

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const APP_NAMESPACE = 'alignment';
/** Label that the base puts on everything of the application (not on Jaeger, the collector or the data loader). */
export const PART_OF = 'app.kubernetes.io/part-of';

/** A rendered object, as parsed from YAML (the fields the specs read are typed at the point of use). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** Every kind the manifests may contain, with its schema. A kind missing here fails validation on purpose. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Pod': Pod,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

/** Throws with the schema's messages if obj is not a valid object of its kind. */
export function validateSchema(obj: K8sObject): void {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) throw new Error(`no schema registered for ${obj.apiVersion} ${obj.kind} (${obj.metadata?.name})`);
  new Model(obj as never).validate();
}

export interface Rendered {
  /** variant name (e.g. "gpu+tracing") -> its objects */
  variants: Map<string, K8sObject[]>;
  /** the kustomize version render.sh pins */
  kustomizeVersion: string;
}

/** Runs tools/deploy/render.sh into a temp dir and parses every variant. The first run may install kustomize. */
export function renderAll(): Rendered {
  const script = path.join(REPO_ROOT, 'tools', 'deploy', 'render.sh');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'alignment-render-'));
  try {
    const stdout = execFileSync('bash', [script, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const variants = new Map<string, K8sObject[]>();
    for (const file of stdout.split('\n').filter(Boolean)) {
      const objects = parseAllDocuments(fs.readFileSync(file, 'utf8')).map((doc) => {
        if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
        return doc.toJS() as K8sObject;
      });
      variants.set(path.basename(file, '.yaml'), withLearnJob(objects.filter(Boolean)));
    }
    const pinned = /^KUSTOMIZE_VERSION=(\S+)$/m.exec(fs.readFileSync(script, 'utf8'));
    return { variants, kustomizeVersion: pinned ? pinned[1] : 'unknown' };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** The `app` label of the LEARN Jobs' pods (services/coordinator/src/clients/kubernetes/job-manifest.ts). */
export const LEARN_JOB_APP = 'learn-job';

/**
 * A variant as it runs: where the coordinator runs LEARN as Kubernetes Jobs (LEARN_EXECUTOR=kubernetes), the render
 * plus the Job it creates for a LEARN stage, built by the coordinator's own code from its rendered environment, so
 * that every check of the manifests (schema, Pod Security, resources, network policies) covers that Job too.
 */
export function withLearnJob(objects: K8sObject[]): K8sObject[] {
  const coordinator = workloads(objects).find((w) => w.app === 'coordinator' && w.object.kind === 'Deployment');
  if (!coordinator) return objects;
  const env = effectiveEnv(objects, coordinator.namespace, mainContainer(coordinator));
  if (env.LEARN_EXECUTOR !== 'kubernetes') return objects;
  const { template } = kubernetesLearnConfigFromEnv(env, env.DATA_DIR);
  const jobId = 'run-1-0123456789abcdef-r0-learn-a0';
  const output = `${env.DATA_DIR}/runs/run-1/round-0/learn/attempt-0`;
  // With MODEL_STORE_URI the Job trains into the attempt's directory and publishes it to the store.
  const publishUri = env.MODEL_STORE_URI ? `${env.MODEL_STORE_URI}/run-1/round-0/learn/attempt-0` : undefined;
  const paths = { output, workDir: `${output}.work`, spec: `${output}.work/job-spec.json`, ...(publishUri ? { publishUri } : {}) };
  const job = learnJobManifest({ name: learnJobName(jobId), namespace: coordinator.namespace, jobId, template, paths });
  return [...objects, job as unknown as K8sObject];
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

/** A pod as some object runs it: a Deployment's or Job's template, or a bare Pod. */
export interface Workload {
  object: K8sObject;
  /** the `app` label of its pods */
  app: string;
  namespace: string;
  labels: Record<string, string>;
  spec: IPodSpec;
}

export function workloads(objects: K8sObject[]): Workload[] {
  const result: Workload[] = [];
  for (const object of objects) {
    let labels: Record<string, string> | undefined;
    let spec: IPodSpec | undefined;
    if (object.kind === 'Deployment' || object.kind === 'Job') {
      const template = (object.spec as { template: { metadata?: { labels?: Record<string, string> }; spec: IPodSpec } })
        .template;
      labels = template.metadata?.labels;
      spec = template.spec;
    } else if (object.kind === 'Pod') {
      labels = object.metadata.labels;
      spec = object.spec as IPodSpec;
    }
    if (!spec) continue;
    labels ??= {};
    result.push({ object, app: labels.app ?? object.metadata.name, namespace: object.metadata.namespace ?? 'default', labels, spec });
  }
  return result;
}

/** Workloads of the application itself (the five services; not the LEARN Jobs the coordinator creates). */
export function serviceWorkloads(objects: K8sObject[]): Workload[] {
  return workloads(objects).filter((w) => w.labels[PART_OF] === 'alignment' && w.app !== LEARN_JOB_APP);
}

export function mainContainer(w: Workload): IContainer {
  const container = w.spec.containers.find((c) => c.name === 'server');
  if (!container) throw new Error(`${w.object.kind}/${w.object.metadata.name} has no container named server`);
  return container;
}

/** A container's environment as the kubelet builds it: envFrom ConfigMaps and Secrets first, then env on top. */
export function effectiveEnv(objects: K8sObject[], namespace: string, container: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const [kind, name] = source.configMapRef ? ['ConfigMap', source.configMapRef.name] : ['Secret', source.secretRef?.name];
    if (!name) throw new Error(`${container.name}: envFrom without a configMapRef or secretRef name`);
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? 'default') === namespace) as
      | (K8sObject & { data?: Record<string, string>; stringData?: Record<string, string> })
      | undefined;
    if (!found) throw new Error(`${container.name}: envFrom ${kind} ${name} is not in the render`);
    const data = kind === 'Secret' ? Object.fromEntries(Object.entries(found.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : found.data;
    Object.assign(env, data ?? {}, found.stringData ?? {});
  }
  for (const variable of container.env ?? []) {
    env[variable.name] = variable.value ?? (variable.valueFrom ? '<valueFrom>' : '');
  }
  return env;
}

type LabelExpression = { key: string; operator: string; values?: string[] };

function selects(selector: { matchLabels?: Record<string, string>; matchExpressions?: LabelExpression[] } | undefined,
  labels: Record<string, string>): boolean {
  if (!selector) return false;
  const expressions = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    if (operator === 'In') return key in labels && values.includes(labels[key]);
    if (operator === 'NotIn') return !(key in labels) || !values.includes(labels[key]);
    if (operator === 'Exists') return key in labels;
    if (operator === 'DoesNotExist') return !(key in labels);
    throw new Error(`label selector operator ${operator} is not modelled`);
  });
  return expressions && Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

/** The workloads behind `host:port` (a Service name in `namespace` and one of its ports), with the container port. */
export function resolveAddress(objects: K8sObject[], namespace: string, address: string):
  { workloads: Workload[]; containerPort: number } {
  const match = /^(?:dns:\/\/\/|https?:\/\/)?([a-z0-9-]+):(\d+)$/.exec(address);
  if (!match) throw new Error(`address '${address}' is not <service>:<port>`);
  const [, host, port] = match;
  const service = objects.find(
    (o) => o.kind === 'Service' && o.metadata.name === host && (o.metadata.namespace ?? 'default') === namespace,
  ) as (K8sObject & IService) | undefined;
  if (!service) throw new Error(`address '${address}': no Service ${host} in namespace ${namespace}`);
  const servicePort = service.spec?.ports?.find((p) => p.port === Number(port));
  if (!servicePort) throw new Error(`address '${address}': Service ${host} has no port ${port}`);
  const targets = workloads(objects).filter((w) => w.namespace === namespace && selects(service.spec?.selector ? { matchLabels: service.spec.selector } : undefined, w.labels));
  const target = servicePort.targetPort ?? servicePort.port;
  const ports = targets.map((w) => {
    const containerPort = w.spec.containers
      .flatMap((c) => c.ports ?? [])
      .find((p) => (typeof target === 'number' ? p.containerPort === target : p.name === target));
    if (!containerPort) throw new Error(`address '${address}': ${w.app} has no container port ${target}`);
    return containerPort.containerPort;
  });
  if (!targets.length) throw new Error(`address '${address}': Service ${host} selects no workload`);
  if (new Set(ports).size !== 1) throw new Error(`address '${address}': selected pods disagree on the port`);
  return { workloads: targets, containerPort: ports[0] };
}

/** Kubernetes quantity to a number (cores for CPU, bytes for memory). */
export function quantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(value);
  if (!match) throw new Error(`not a quantity: ${value}`);
  const factor: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
  };
  return Number(match[1]) * factor[match[2] ?? ''];
}

/** repository, tag and digest of an image reference (a registry port is not mistaken for a tag). */
export function parseImage(ref: string): { repository: string; tag?: string; digest?: string } {
  const [name, digest] = ref.split('@');
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) return { repository: name.slice(0, colon), tag: name.slice(colon + 1), digest };
  return { repository: name, digest };
}

// --- network policies ------------------------------------------------------------------------------------------

/** A pod as network policies see it: its labels and its namespace's labels. */
export interface Endpoint {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  namespaceLabels: Record<string, string>;
}

function peerMatches(peer: INetworkPolicyPeer, endpoint: Endpoint, policyNamespace: string): boolean {
  if (peer.ipBlock) return false; // the manifests never allow by address
  const namespaceOk = peer.namespaceSelector
    ? selectsOrAll(peer.namespaceSelector, endpoint.namespaceLabels)
    : endpoint.namespace === policyNamespace;
  const podOk = peer.podSelector ? selectsOrAll(peer.podSelector, endpoint.labels) : true;
  return namespaceOk && podOk;
}

function selectsOrAll(selector: { matchLabels?: Record<string, string>; matchExpressions?: LabelExpression[] }, labels: Record<string, string>): boolean {
  return (Object.keys(selector.matchLabels ?? {}).length === 0 && !selector.matchExpressions?.length) || selects(selector, labels);
}

function portMatches(ports: INetworkPolicyPort[] | undefined, port: number, protocol: string): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') throw new Error('named ports in network policies are not modelled');
    return p.endPort ? port >= p.port && port <= p.endPort : port === p.port;
  });
}

function policyTypes(policy: INetworkPolicy): string[] {
  return policy.spec?.policyTypes ?? (policy.spec?.egress ? ['Ingress', 'Egress'] : ['Ingress']);
}

/** Whether the policies let `from` open a connection to `to` on port/protocol (both directions must allow it). */
export function connectionAllowed(policies: (K8sObject & INetworkPolicy)[], from: Endpoint, to: Endpoint, port: number,
  protocol = 'TCP'): boolean {
  const applying = (endpoint: Endpoint, type: string) =>
    policies.filter(
      (p) => (p.metadata.namespace ?? 'default') === endpoint.namespace && policyTypes(p).includes(type) &&
        selectsOrAll(p.spec?.podSelector ?? {}, endpoint.labels),
    );
  const egress = applying(from, 'Egress');
  const egressOk = egress.length === 0 || egress.some((p) => (p.spec?.egress ?? []).some(
    (rule) => (!rule.to?.length || rule.to.some((peer) => peerMatches(peer, to, from.namespace))) &&
      portMatches(rule.ports, port, protocol),
  ));
  const ingress = applying(to, 'Ingress');
  const ingressOk = ingress.length === 0 || ingress.some((p) => (p.spec?.ingress ?? []).some(
    (rule) => (!rule.from?.length || rule.from.some((peer) => peerMatches(peer, from, to.namespace))) &&
      portMatches(rule.ports, port, protocol),
  ));
  return egressOk && ingressOk;
}
