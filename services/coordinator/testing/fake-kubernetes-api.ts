import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { toLocalPath } from '@alignment/artifacts';
import { JobSpec, type ArtifactRef } from '@alignment/contracts';
import type { JobObject, PodObject } from '../src/clients/kubernetes';
import { fakeTrainOutputs } from './fake-service-outputs';

// A stand-in for the Kubernetes API server (this machine runs none), on loopback: just the endpoints the LEARN
// executor calls (create/get/delete Job, create Service, list pods by label selector), with Kubernetes' Status
// error bodies. It records every request; a test plays the Job controller by setting a Job's status and pods, and
// injects error answers.

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  body?: Record<string, unknown>;
}

export class FakeKubernetesApi {
  readonly requests: RecordedRequest[] = [];
  readonly jobs = new Map<string, JobObject>();
  readonly services = new Map<string, Record<string, unknown>>();
  /** Pods by namespace; listPods filters them by the label selector. */
  readonly pods: PodObject[] = [];
  /** Answers to send instead, in order, for requests matching method and path prefix. */
  private readonly injected: { method: string; prefix: string; status: number; reason: string; message: string }[] = [];
  /** Called after a Job is created (a test's "kubelet"). */
  onJobCreated?: (job: JobObject) => void;
  private server?: http.Server;
  private uid = 0;
  url = '';

  /** Listens on loopback; with `tls` (PEM key and certificate) over https, as a real API server does. */
  async start(tls?: { key: Buffer; cert: Buffer }): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  inject(method: string, prefix: string, status: number, reason: string, message: string, times = 1): void {
    for (let i = 0; i < times; i++) this.injected.push({ method, prefix, status, reason, message });
  }

  /** Requests other than status reads. */
  writes(): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET');
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const record: RecordedRequest = { method: req.method!, path: req.url!, authorization: req.headers.authorization, body: text ? JSON.parse(text) : undefined };
      this.requests.push(record);
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const fail = (status: number, reason: string, message: string) =>
        send(status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code: status });
      const i = this.injected.findIndex((e) => e.method === record.method && record.path.startsWith(e.prefix));
      if (i >= 0) {
        const [e] = this.injected.splice(i, 1);
        return fail(e.status, e.reason, e.message);
      }
      const url = new URL(record.path, 'http://x');
      let m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs(?:\/([^/]+))?$/.exec(url.pathname);
      if (m) {
        const [, ns, name] = m;
        const key = `${ns}/${name}`;
        if (record.method === 'GET' && !name) {
          const [key, value] = (url.searchParams.get('labelSelector') ?? '').split('=');
          const items = [...this.jobs.entries()].filter(([k, j]) => k.startsWith(`${ns}/`) && j.metadata.labels?.[key] === value).map(([, j]) => j);
          return send(200, { kind: 'JobList', items });
        }
        if (record.method === 'POST' && !name) {
          const job = record.body as unknown as JobObject;
          const created = `${ns}/${job.metadata.name}`;
          if (this.jobs.has(created)) return fail(409, 'AlreadyExists', `jobs.batch "${job.metadata.name}" already exists`);
          const stored: JobObject = { ...job, metadata: { ...job.metadata, namespace: ns, uid: `uid-${++this.uid}` }, status: {} };
          this.jobs.set(created, stored);
          send(201, stored);
          this.onJobCreated?.(stored);
          return;
        }
        const job = this.jobs.get(key);
        if (!job) return fail(404, 'NotFound', `jobs.batch "${name}" not found`);
        if (record.method === 'GET') return send(200, job);
        if (record.method === 'DELETE') {
          this.jobs.delete(key);
          return send(200, { kind: 'Status', status: 'Success' });
        }
      }
      m = /^\/api\/v1\/namespaces\/([^/]+)\/services$/.exec(url.pathname);
      if (m && record.method === 'POST') {
        const name = (record.body as { metadata: { name: string } }).metadata.name;
        if (this.services.has(`${m[1]}/${name}`)) return fail(409, 'AlreadyExists', `services "${name}" already exists`);
        this.services.set(`${m[1]}/${name}`, record.body!);
        return send(201, record.body);
      }
      m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
      if (m && record.method === 'GET') {
        const [key, value] = (url.searchParams.get('labelSelector') ?? '').split('=');
        const items = this.pods.filter((p) => (p.metadata.namespace ?? m![1]) === m![1] && p.metadata.labels?.[key] === value);
        return send(200, { kind: 'PodList', items });
      }
      fail(404, 'NotFound', `no route ${record.method} ${record.path}`);
    });
  }

  /** Plays the Job controller: marks the Job Complete or Failed. */
  finish(namespace: string, name: string, type: 'Complete' | 'Failed', reason?: string, message?: string): void {
    const job = this.jobs.get(`${namespace}/${name}`);
    if (!job) throw new Error(`no Job ${namespace}/${name}`);
    job.status = {
      ...(type === 'Complete' ? { succeeded: 1 } : { failed: 1 }),
      conditions: [{ type, status: 'True', reason, message }],
    };
  }
}

/**
 * Plays a LEARN Job's pod: reads the JobSpec from the path in the Job's command, writes what the trainer's job CLI
 * writes (the trainer double's outputs, progress.json, result.json: trainer jobs/cli.py), and completes the Job.
 */
export async function runTrainerPod(api: FakeKubernetesApi, job: JobObject): Promise<JobSpec> {
  const command = (job.spec as { template: { spec: { containers: { command: string[] }[] } } }).template.spec.containers[0].command;
  const arg = (flag: string) => command[command.indexOf(flag) + 1];
  const spec = JobSpec.fromJSON(JSON.parse(fs.readFileSync(arg('--spec'), 'utf8')));
  if (toLocalPath(spec.outputUri) !== arg('--output')) throw new Error(`--output ${arg('--output')} is not the spec's output_uri ${spec.outputUri}`);
  const { outputs, metrics } = await fakeTrainOutputs(spec);
  const info = (a?: ArtifactRef) => (a ? { path: toLocalPath(a.uri), sha256: a.sha256, size_bytes: a.sizeBytes } : null);
  const work = arg('--work-dir');
  fs.writeFileSync(path.join(work, 'progress.json'), JSON.stringify({ step: 3, total_steps: 3, loss: 0.5, tokens_per_second: 100, eta_seconds: 0, time: 0 }));
  fs.writeFileSync(path.join(work, 'result.json'), JSON.stringify({
    state: 'SUCCEEDED', total_steps: 3, final_metrics: metrics,
    outputs: { hf_checkpoint: info(outputs.model?.hfCheckpoint), onnx: info(outputs.model?.onnx), manifest: info(outputs.manifest), metrics: info(outputs.metrics) },
  }));
  api.finish(job.metadata.namespace!, job.metadata.name, 'Complete');
  return spec;
}
