import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

// A small typed client for the few Kubernetes API endpoints the LEARN-as-Jobs executor needs (batch/v1 Jobs, core/v1
// Services and Pods), over node's http/https: @kubernetes/client-node is not a dependency of this repository. It
// authenticates with a bearer token, read again before every request (projected service-account tokens rotate).

/** Where the API server is and how to authenticate. */
export interface KubernetesConnection {
  /** e.g. https://10.0.0.1:443 (in-cluster) or http://127.0.0.1:PORT (a test's fake server). */
  baseUrl: string;
  /** Returns the bearer token; undefined sends none. */
  token?: () => string;
  /** PEM CA bundle that verifies the API server (https only). */
  ca?: Buffer;
  /** Namespace the Jobs go to. */
  namespace: string;
  /** Per-request timeout. */
  timeoutMs: number;
}

/** Where a pod finds its service-account credentials (the kubelet mounts them, or a projected volume does). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The in-cluster connection: KUBERNETES_SERVICE_HOST/PORT, the service account's token, CA and namespace files.
 * K8S_API_URL (+ K8S_API_TOKEN) replaces all of it, for a test's fake server or a `kubectl proxy`. K8S_NAMESPACE
 * overrides the namespace.
 */
export function connectionFromEnv(env: NodeJS.ProcessEnv, timeoutMs: number, accountDir = SERVICE_ACCOUNT_DIR): KubernetesConnection {
  if (env.K8S_API_URL) {
    const token = env.K8S_API_TOKEN;
    return { baseUrl: env.K8S_API_URL.replace(/\/+$/, ''), token: token ? () => token : undefined, namespace: env.K8S_NAMESPACE || 'default', timeoutMs };
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  if (!host) {
    throw new Error('LEARN_EXECUTOR=kubernetes: KUBERNETES_SERVICE_HOST is not set (not in a pod); set K8S_API_URL to reach an API server');
  }
  const read = (name: string, raw = false) => {
    try {
      const text = fs.readFileSync(`${accountDir}/${name}`, 'utf8');
      return raw ? text : text.trim();
    } catch (error) {
      throw new Error(`LEARN_EXECUTOR=kubernetes: cannot read the service account's ${name} in ${accountDir}: ${(error as Error).message}`);
    }
  };
  read('token'); // fail at start-up, not at the first LEARN stage
  return {
    baseUrl: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    token: () => read('token'),
    ca: Buffer.from(read('ca.crt', true)),
    namespace: env.K8S_NAMESPACE || read('namespace'),
    timeoutMs,
  };
}

/** An answer other than 2xx: `status` the HTTP status, `reason` and `message` from the API's Status object. */
export class KubernetesApiError extends Error {
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`Kubernetes API: ${operation} answered ${status}${reason ? ` ${reason}` : ''}: ${detail}`);
    this.name = 'KubernetesApiError';
  }
}

/** The API server could not be reached or did not answer in time (retried by the executor). */
export class KubernetesUnreachableError extends Error {
  constructor(
    readonly operation: string,
    detail: string,
  ) {
    super(`Kubernetes API: ${operation}: ${detail}`);
    this.name = 'KubernetesUnreachableError';
  }
}

/** The fields of a Job, Service or Pod that the executor reads; the rest is passed through untouched. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface JobCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface JobObject {
  apiVersion: 'batch/v1';
  kind: 'Job';
  metadata: ObjectMeta;
  spec: Record<string, unknown>;
  status?: { active?: number; succeeded?: number; failed?: number; ready?: number; conditions?: JobCondition[] };
}

export interface ServiceObject {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: Record<string, unknown>;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  terminated?: { exitCode: number; reason?: string; message?: string };
}

export interface PodObject {
  metadata: ObjectMeta;
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    containerStatuses?: { name: string; state?: ContainerState }[];
  };
}

export type DeletePropagation = 'Foreground' | 'Background';

export class KubernetesApi {
  constructor(readonly connection: KubernetesConnection) {}

  private get ns(): string {
    return encodeURIComponent(this.connection.namespace);
  }

  createJob(job: JobObject): Promise<JobObject> {
    return this.request('POST', `/apis/batch/v1/namespaces/${this.ns}/jobs`, `create Job ${job.metadata.name}`, job);
  }

  /** The Job, or undefined when there is none of that name. */
  async getJob(name: string): Promise<JobObject | undefined> {
    return this.orUndefined(this.request('GET', `/apis/batch/v1/namespaces/${this.ns}/jobs/${encodeURIComponent(name)}`, `get Job ${name}`));
  }

  async listJobs(labelSelector: string): Promise<JobObject[]> {
    const list = await this.request<{ items: JobObject[] }>(
      'GET',
      `/apis/batch/v1/namespaces/${this.ns}/jobs?labelSelector=${encodeURIComponent(labelSelector)}`,
      `list Jobs ${labelSelector}`,
    );
    return list.items ?? [];
  }

  /** Deletes the Job and (by propagation) its pods; true when it existed. */
  async deleteJob(name: string, propagationPolicy: DeletePropagation): Promise<boolean> {
    const path = `/apis/batch/v1/namespaces/${this.ns}/jobs/${encodeURIComponent(name)}`;
    const body = { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy };
    return (await this.orUndefined(this.request('DELETE', path, `delete Job ${name}`, body))) !== undefined;
  }

  createService(service: ServiceObject): Promise<ServiceObject> {
    return this.request('POST', `/api/v1/namespaces/${this.ns}/services`, `create Service ${service.metadata.name}`, service);
  }

  async listPods(labelSelector: string): Promise<PodObject[]> {
    const list = await this.request<{ items: PodObject[] }>(
      'GET',
      `/api/v1/namespaces/${this.ns}/pods?labelSelector=${encodeURIComponent(labelSelector)}`,
      `list pods ${labelSelector}`,
    );
    return list.items ?? [];
  }

  private async orUndefined<T>(answer: Promise<T>): Promise<T | undefined> {
    try {
      return await answer;
    } catch (error) {
      if (error instanceof KubernetesApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  private request<T>(method: string, path: string, operation: string, body?: unknown): Promise<T> {
    const { baseUrl, token, ca, timeoutMs } = this.connection;
    const url = new URL(baseUrl + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    if (token) headers.Authorization = `Bearer ${token()}`;
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = transport.request(url, { method, headers, timeout: timeoutMs, ...(url.protocol === 'https:' && ca ? { ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => reject(new KubernetesUnreachableError(operation, error.message)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300 && parsed !== undefined) return resolve(parsed as T);
          const s = (parsed ?? {}) as { reason?: string; message?: string };
          reject(new KubernetesApiError(operation, status, s.reason ?? '', s.message ?? (text.slice(0, 300) || '(no body)')));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (error) => reject(new KubernetesUnreachableError(operation, `${baseUrl}: ${error.message}`)));
      req.end(payload);
    });
  }
}
