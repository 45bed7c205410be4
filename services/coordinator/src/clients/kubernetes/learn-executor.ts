import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileUri, isS3Uri, toLocalPath, writeFileAtomic } from '@alignment/artifacts';
import { Job, JobSpec, JobState, type ArtifactRef } from '@alignment/contracts';
import type { Logger } from '@alignment/service-kit';
import {
  ServiceUnavailableError,
  StageAbortedError,
  StageFailedError,
  abortReason,
  sleep,
  withCheckpointInterval,
  type CallContext,
  type LearnCallContext,
  type LearnExecutor,
} from '../../run';
import { KubernetesApiError, KubernetesUnreachableError, type JobObject, type KubernetesApi, type PodObject } from './api-client';
import {
  JOB_ID_ANNOTATION,
  LABELS,
  learnJobManifest,
  learnJobName,
  learnStageKey,
  rendezvousService,
  type LearnJobPaths,
  type LearnJobTemplate,
} from './job-manifest';

// LEARN_EXECUTOR=kubernetes: each LEARN stage is a batch/v1 Job (job-manifest.ts) that runs the trainer's job CLI on
// GPU nodes and ends with the training, instead of a call to a long-lived trainer service holding its GPUs. The
// coordinator and the Job's pods share the data volume: the coordinator writes the JobSpec there, the pods write
// the outputs, progress.json and result.json (trainer jobs/layout.py), which the coordinator reads. With an s3://
// output_uri (MODEL_STORE_URI) the pods train into the attempt's staging directory on that volume and publish it to
// the URI (the CLI's --publish-uri), with the object store's credentials from a Secret (K8S_LEARN_S3_SECRET).

export interface KubernetesLearnOptions {
  api: KubernetesApi;
  template: LearnJobTemplate;
  /** How often the Job's status and progress.json are read. */
  pollMs: number;
  /** A Job not finished after this long fails the stage (the Job keeps running; a resume re-attaches). */
  stageDeadlineMs: number;
  /** Attempts at an API server that is unreachable or answers 5xx/429 before the stage fails. */
  retry: { attempts: number; initialBackoffMs: number; maxBackoffMs: number };
  /**
   * A pod that cannot start (its image cannot be pulled, its configuration is invalid: STUCK_REASONS) for this long
   * fails the stage and its Job is deleted, so that it does not hold its GPUs while it waits for nothing.
   */
  stuckGraceMs: number;
  /** Checkpoint interval for jobs whose hyper-parameters set none (as the gRPC executor). */
  checkpointEverySteps?: number;
  logger: Logger;
}

interface ResultFile {
  state: string;
  error?: string;
  total_steps?: number;
  final_metrics?: Record<string, number>;
  outputs?: Record<string, OutputInfo | null>;
}

/** An output in result.json: where the job wrote it, and its s3:// location when it published it (--publish-uri). */
interface OutputInfo {
  path: string;
  uri?: string;
  sha256: string;
  size_bytes: number;
}

/**
 * Paths of a job: the CLI's --output and --work-dir. A local output_uri is the output directory; an s3:// one is
 * published from `stagingDir` (LearnCallContext), which must then be given.
 */
export function learnJobPaths(spec: JobSpec, jobId: string, stagingDir?: string): LearnJobPaths {
  if (!spec.outputUri) throw new StageFailedError(`trainer job ${jobId}: the JobSpec has no output_uri`);
  const publishUri = isS3Uri(spec.outputUri) ? spec.outputUri.replace(/\/+$/, '') : undefined;
  if (publishUri && !stagingDir) {
    throw new StageFailedError(`trainer job ${jobId}: output_uri ${publishUri} is in object storage, and no staging directory on the data volume was given to train into`);
  }
  const output = publishUri ? path.resolve(stagingDir!) : toLocalPath(spec.outputUri);
  const workDir = `${output}.work`;
  return { output, workDir, spec: path.join(workDir, 'job-spec.json'), ...(publishUri ? { publishUri } : {}) };
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined; // absent, or being replaced
  }
}

/** Container waiting reasons that do not resolve by waiting (unlike ContainerCreating or an unschedulable pod). */
export const STUCK_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError']);

function stuckReasons(pods: PodObject[]): string[] {
  return pods.flatMap((pod) =>
    (pod.status?.containerStatuses ?? [])
      .filter((c) => c.state?.waiting?.reason && STUCK_REASONS.has(c.state.waiting.reason))
      .map((c) => `pod ${pod.metadata.name}: container ${c.name} ${c.state!.waiting!.reason}${c.state!.waiting!.message ? `: ${c.state!.waiting!.message}` : ''}`),
  );
}

function condition(job: JobObject, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/** Why the Job's pods failed, from the pods' status: "pod P: container trainer exited 1 (Error): message". */
function podFailures(pods: PodObject[]): string[] {
  const reasons: string[] = [];
  for (const pod of pods) {
    const name = pod.metadata.name;
    for (const container of pod.status?.containerStatuses ?? []) {
      const t = container.state?.terminated;
      if (t && t.exitCode !== 0) {
        reasons.push(`pod ${name}: container ${container.name} exited ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${t.message.trim()}` : ''}`);
      }
      const w = container.state?.waiting;
      if (w?.reason && w.reason !== 'ContainerCreating' && w.reason !== 'PodInitializing') {
        reasons.push(`pod ${name}: container ${container.name} waiting (${w.reason})${w.message ? `: ${w.message}` : ''}`);
      }
    }
    if (pod.status?.phase === 'Failed' && (pod.status.reason || pod.status.message)) {
      reasons.push(`pod ${name}: ${pod.status.reason ?? 'Failed'}${pod.status.message ? `: ${pod.status.message}` : ''}`);
    }
  }
  return reasons;
}

function isConflict(error: unknown): error is KubernetesApiError {
  return error instanceof KubernetesApiError && error.status === 409;
}

function artifact(info: OutputInfo | null | undefined): ArtifactRef | undefined {
  return info ? { uri: info.uri ?? fileUri(info.path), sha256: info.sha256, sizeBytes: info.size_bytes } : undefined;
}

export class KubernetesLearnExecutor implements LearnExecutor {
  constructor(private readonly options: KubernetesLearnOptions) {}

  private get namespace(): string {
    return this.options.api.connection.namespace;
  }

  /** One API call: unreachable / 429 / 5xx answers are retried with backoff; other answers fail the stage. */
  private async call<T>(jobId: string, fn: () => Promise<T>, signal: AbortSignal, passConflict = false): Promise<T> {
    const { attempts, initialBackoffMs, maxBackoffMs } = this.options.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        const transient = error instanceof KubernetesUnreachableError || (error instanceof KubernetesApiError && (error.status >= 500 || error.status === 429));
        if (passConflict && isConflict(error)) throw error;
        if (!transient) throw this.stageError(jobId, error);
        if (attempt >= attempts) {
          throw new ServiceUnavailableError('Kubernetes API', this.options.api.connection.baseUrl, attempt, (error as Error).message);
        }
        this.options.logger.warn({ job_id: jobId, attempt, err: error }, 'Kubernetes API call failed; retrying');
        await sleep(Math.min(maxBackoffMs, initialBackoffMs * 2 ** (attempt - 1)), signal);
      }
    }
  }

  private stageError(jobId: string, error: unknown): Error {
    if (!(error instanceof KubernetesApiError)) return error as Error;
    const hint =
      error.status === 403 || error.status === 401
        ? ` (the coordinator's ServiceAccount needs the Role of deploy/k8s/components/learn-as-jobs in namespace ${this.namespace})`
        : error.status === 422 || error.status === 400
          ? ' (the LEARN Job was refused: check the K8S_LEARN_* settings)'
          : '';
    return new StageFailedError(`trainer job ${jobId}: ${error.message}${hint}`);
  }

  async train(jobId: string, requested: JobSpec, ctx: LearnCallContext): Promise<Job> {
    const spec = withCheckpointInterval(requested, this.options.checkpointEverySteps);
    const paths = learnJobPaths(spec, jobId, ctx.stagingDir);
    if (paths.publishUri && !this.options.template.objectStoreSecret) {
      throw new StageFailedError(
        `trainer job ${jobId}: output_uri ${paths.publishUri} is in object storage, and the LEARN Jobs have no credentials for it: set K8S_LEARN_S3_SECRET to the Secret that holds them`,
      );
    }
    const name = learnJobName(jobId);
    const api = this.options.api;
    let job = await this.call(jobId, () => api.getJob(name), ctx.signal);
    if (job) {
      this.checkOwner(job, jobId);
      this.options.logger.info({ job_id: jobId, k8s_job: name }, 're-attaching to the LEARN Job');
    } else {
      const finished = await readJson<ResultFile>(path.join(paths.workDir, 'result.json'));
      // The Job ran to the end and its TTL removed it while no coordinator watched: its result stands.
      if (finished) return this.released(jobId, this.outcome(jobId, name, finished, [], spec, paths), finished, paths);
      // The same bytes on every (re-)attempt: the spec is deterministic in the stage.
      await fs.mkdir(paths.workDir, { recursive: true });
      await writeFileAtomic(paths.spec, JSON.stringify(JobSpec.toJSON(spec), null, 2) + '\n');
      await this.deleteEarlierAttempts(jobId, name, paths, ctx.signal);
      job = await this.create(jobId, name, paths, ctx.signal);
    }
    try {
      job = await this.follow(jobId, name, job, paths, ctx);
    } catch (error) {
      // Aborted while waiting or between API retries: a cancelled run deletes its Job, a shutdown leaves it.
      if (error instanceof StageAbortedError) return this.abandon(jobId, name, ctx.signal);
      throw error;
    }
    await this.reportProgress(paths, ctx);
    const result = (await readJson<ResultFile>(path.join(paths.workDir, 'result.json'))) ?? { state: 'MISSING' };
    const failed = condition(job, 'Failed');
    const pods = failed ? await this.call(jobId, () => api.listPods(`${LABELS.learnJob}=${name}`), ctx.signal) : [];
    if (failed && result.state === 'SUCCEEDED') result.state = 'FAILED';
    const reasons = failed ? [`Job ${failed.reason ?? 'Failed'}${failed.message ? `: ${failed.message}` : ''}`, ...podFailures(pods)] : [];
    return this.released(jobId, this.outcome(jobId, name, result, reasons, spec, paths), result, paths);
  }

  /**
   * With --publish-uri, the weights the Job left in its staging directory (its checkpoint and ONNX export, as
   * result.json lists them) are deleted once the Job has succeeded with them published: the bucket keeps the only
   * copy, and the data volume keeps the small files (manifest, metrics, the work dir). A deletion that fails is
   * logged and leaves the stage as it is.
   */
  private async released(jobId: string, job: Job, result: ResultFile, paths: LearnJobPaths): Promise<Job> {
    if (!paths.publishUri) return job;
    for (const role of ['hf_checkpoint', 'onnx']) {
      const staged = result.outputs?.[role]?.path;
      if (!staged || !path.resolve(staged).startsWith(paths.output + path.sep)) continue;
      await fs.rm(staged, { recursive: true, force: true }).then(
        () => this.options.logger.info({ job_id: jobId, staged }, 'deleted the staged copy of a published output'),
        (error) => this.options.logger.warn({ job_id: jobId, staged, err: error }, 'could not delete the staged copy of a published output'),
      );
    }
    return job;
  }

  /** Polls the Job until it completes or fails (and reports progress); fails the stage on a stuck pod or the deadline. */
  private async follow(jobId: string, name: string, first: JobObject, paths: LearnJobPaths, ctx: CallContext): Promise<JobObject> {
    const api = this.options.api;
    let job = first;
    const deadline = Date.now() + this.options.stageDeadlineMs;
    let stuckSince: number | undefined;
    for (;;) {
      if (ctx.signal.aborted) throw new StageAbortedError(abortReason(ctx.signal));
      if (condition(job, 'Complete') || condition(job, 'Failed')) return job;
      if (Date.now() > deadline) {
        throw new StageFailedError(
          `trainer job ${jobId} (Kubernetes Job ${name}) did not finish within ${this.options.stageDeadlineMs} ms; it keeps running, and StartRun with the same run_id re-attaches to it`,
        );
      }
      await this.reportProgress(paths, ctx);
      // Pods that cannot start: checked while no pod of the Job is ready.
      if (!job.status?.ready) {
        const stuck = stuckReasons(await this.call(jobId, () => api.listPods(`${LABELS.learnJob}=${name}`), ctx.signal));
        stuckSince = stuck.length ? (stuckSince ?? Date.now()) : undefined;
        if (stuck.length && Date.now() - stuckSince! >= this.options.stuckGraceMs) {
          await this.call(jobId, () => api.deleteJob(name, 'Background'), ctx.signal);
          throw new StageFailedError(`trainer job ${jobId} (Kubernetes Job ${name}) could not start, and was deleted: ${stuck.join('; ')}`);
        }
      }
      await sleep(this.options.pollMs, ctx.signal);
      const current = await this.call(jobId, () => api.getJob(name), ctx.signal);
      if (!current) throw new StageFailedError(`trainer job ${jobId}: Kubernetes Job ${name} was deleted before it finished`);
      job = current;
    }
  }

  /**
   * A stage that failed while its Job kept running (the API server was unreachable, the stage deadline passed) is
   * executed again as a new attempt: the earlier attempts' unfinished Jobs are deleted first, so that they stop
   * holding GPUs and writing beside the new one.
   */
  private async deleteEarlierAttempts(jobId: string, name: string, paths: LearnJobPaths, signal: AbortSignal): Promise<void> {
    const api = this.options.api;
    const jobs = await this.call(jobId, () => api.listJobs(`${LABELS.learnStage}=${learnStageKey(paths)}`), signal);
    for (const other of jobs) {
      if (other.metadata.name === name || condition(other, 'Complete') || condition(other, 'Failed')) continue;
      await this.call(jobId, () => api.deleteJob(other.metadata.name, 'Background'), signal);
      this.options.logger.warn({ job_id: jobId, k8s_job: other.metadata.name }, "deleted an earlier attempt's unfinished LEARN Job");
    }
  }

  private checkOwner(job: JobObject, jobId: string): void {
    const owner = job.metadata.annotations?.[JOB_ID_ANNOTATION];
    if (owner !== jobId) {
      throw new StageFailedError(
        `trainer job ${jobId}: Kubernetes Job ${job.metadata.name} in namespace ${this.namespace} belongs to ${owner ? `job ${owner}` : 'something else'}; delete it or use another namespace`,
      );
    }
  }

  private async create(jobId: string, name: string, paths: LearnJobPaths, signal: AbortSignal): Promise<JobObject> {
    const api = this.options.api;
    const manifest = learnJobManifest({ name, namespace: this.namespace, jobId, template: this.options.template, paths });
    let job: JobObject;
    try {
      job = await this.call(jobId, () => api.createJob(manifest), signal, true);
      this.options.logger.info({ job_id: jobId, k8s_job: name, nodes: this.options.template.nodes }, 'created the LEARN Job');
    } catch (error) {
      // 409 AlreadyExists: created meanwhile (a create whose answer was lost): attach to it if it is ours.
      if (!isConflict(error)) throw error;
      const existing = await this.call(jobId, () => api.getJob(name), signal);
      if (!existing) throw this.stageError(jobId, error);
      this.checkOwner(existing, jobId);
      job = existing;
    }
    if (this.options.template.nodes > 1) {
      // Already there when re-created after a lost answer; it is deleted with the Job (owner reference).
      await this.call(jobId, () => api.createService(rendezvousService(job, this.options.template)), signal, true).catch((error) => {
        if (!isConflict(error)) throw error;
      });
    }
    return job;
  }

  private async reportProgress(paths: LearnJobPaths, ctx: CallContext): Promise<void> {
    const p = await readJson<{ step: number; total_steps: number; tokens_per_second?: number; eta_seconds?: number }>(path.join(paths.workDir, 'progress.json'));
    if (p && Number.isFinite(p.step)) {
      ctx.onProgress({ done: p.step, total: p.total_steps, unit: 'steps', tokensPerSecond: p.tokens_per_second ?? 0, etaSeconds: p.eta_seconds ?? 0 });
    }
  }

  /** The SUCCEEDED Job as the trainer service reports one (the same outputs), or the stage's failure. */
  private outcome(jobId: string, name: string, result: ResultFile, reasons: string[], spec: JobSpec, paths: LearnJobPaths): Job {
    if (result.state !== 'SUCCEEDED') {
      const trainer = result.error ? [`trainer: ${result.error}`] : [];
      const why = [...trainer, ...reasons].join('; ') || 'the Job completed without result.json';
      throw new StageFailedError(`trainer job ${jobId} (Kubernetes Job ${name}) failed: ${why}`);
    }
    const outputs = result.outputs ?? {};
    const unpublished = Object.entries(outputs).filter(([, info]) => info && paths.publishUri && !info.uri?.startsWith(`${paths.publishUri}/`));
    if (unpublished.length) {
      throw new StageFailedError(
        `trainer job ${jobId} (Kubernetes Job ${name}) succeeded without publishing ${unpublished.map(([role]) => role).join(', ')} to ${paths.publishUri}`,
      );
    }
    const steps = result.total_steps ?? 0;
    return Job.fromPartial({
      jobId,
      spec,
      state: JobState.JOB_STATE_SUCCEEDED,
      progress: { done: steps, total: steps, unit: 'steps' },
      metrics: result.final_metrics ?? {},
      outputs: {
        model: { hfCheckpoint: artifact(outputs.hf_checkpoint), onnx: artifact(outputs.onnx) },
        manifest: artifact(outputs.manifest),
        metrics: artifact(outputs.metrics),
      },
    });
  }

  /** Stops waiting; a cancelled run deletes its Job (and pods), a shutdown leaves it for the next coordinator. */
  private async abandon(jobId: string, name: string, signal: AbortSignal): Promise<never> {
    const reason = abortReason(signal);
    if (reason === 'cancelled') {
      await this.options.api.deleteJob(name, 'Background').then(
        () => this.options.logger.info({ job_id: jobId, k8s_job: name }, 'deleted the LEARN Job of a cancelled run'),
        (error) => this.options.logger.warn({ job_id: jobId, k8s_job: name, err: error }, 'could not delete the LEARN Job'),
      );
    }
    throw new StageAbortedError(reason);
  }
}
