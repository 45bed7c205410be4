// TEST DOUBLES of the generator, judge and trainer gRPC services (the real ones are being built in parallel), served
// with service-kit's startServer so the coordinator talks to them exactly as it will to the real services: same
// contracts, same streams, deadlines, tracing and status codes. What they compute is fake-service-outputs.ts.
import * as grpc from '@grpc/grpc-js';
import {
  DESCRIPTOR_SET_PATH,
  GeneratorService,
  JobSpec,
  JobState,
  JudgeService,
  TrainerService,
  type GenerateRequest,
  type GenerateResponse,
  type GetJobRequest,
  type Job,
  type JudgePairsRequest,
  type JudgePairsResponse,
  type ListJobsRequest,
  type StartJobRequest,
  type TrainingStep,
  type WatchJobRequest,
  type WatchJobResponse,
} from '@alignment/contracts';
import { NotFoundError } from '@alignment/errors';
import { startServer, type RunningServer, type ServiceBinding } from '@alignment/service-kit';
import { fakeGenerate, fakeJudgePairs, fakeTrainOutputs } from './fake-service-outputs';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Thrown when the caller went away: a CANCELLED status, which the service kit logs as a rejection, not a failure. */
class CallCancelled extends Error {
  readonly code = grpc.status.CANCELLED;
  readonly details = 'the caller cancelled the call';
  constructor() {
    super('the caller cancelled the call');
  }
}

function binding(definition: unknown, handlers: ServiceBinding['handlers']): ServiceBinding {
  return { definition: definition as ServiceBinding['definition'], handlers };
}

async function serve(name: string, bindings: ServiceBinding[], port = 0): Promise<RunningServer> {
  return startServer({ name, port, host: '127.0.0.1', bindings, descriptorSetPath: DESCRIPTOR_SET_PATH, drainTimeoutMs: 500 });
}

export interface DoubleOptions {
  /** Delay before each prompt (generator) or item (judge). */
  perItemMs?: number;
  /** Port to bind (0 = any free one). */
  port?: number;
}

/** Test double of alignment.v1.Generator. Stops (without writing) when the caller cancels. */
export class GeneratorDouble {
  readonly calls: GenerateRequest[] = [];
  /** Calls whose caller went away before the result (a killed coordinator). */
  cancelled = 0;
  perItemMs: number;
  /** Holds a call after its first prompt until the returned promise resolves (tests keep a stage in flight). */
  holdIf: ((request: GenerateRequest) => Promise<void> | undefined) | undefined;
  private constructor(
    readonly server: RunningServer,
    options: DoubleOptions,
  ) {
    this.perItemMs = options.perItemMs ?? 0;
  }

  static async start(options: DoubleOptions = {}): Promise<GeneratorDouble> {
    let self: GeneratorDouble | undefined;
    const server = await serve(
      'generator-double',
      [
        binding(GeneratorService, {
          generate: async (request: GenerateRequest, call: grpc.ServerWritableStream<GenerateRequest, GenerateResponse>) => {
            self!.calls.push(request);
            try {
              const result = await fakeGenerate(request, {
                beforePrompt: async (done, total) => {
                  if (self!.perItemMs) await sleep(self!.perItemMs);
                  const hold = done === 1 ? self!.holdIf?.(request) : undefined;
                  let released = false;
                  void hold?.then(() => (released = true));
                  while (hold && !released && !call.cancelled) await sleep(20);
                  if (call.cancelled) throw new CallCancelled();
                  call.write({ event: { $case: 'progress', value: { done, total, unit: 'prompts', tokensPerSecond: 100, etaSeconds: 0 } } });
                },
              });
              call.write({ event: { $case: 'result', value: result } });
            } catch (error) {
              if (error instanceof CallCancelled) self!.cancelled += 1;
              throw error;
            }
          },
        }),
      ],
      options.port,
    );
    self = new GeneratorDouble(server, options);
    return self;
  }

  get address(): string {
    return this.server.address;
  }

  shutdown(): Promise<void> {
    return this.server.shutdown();
  }
}

/** Test double of alignment.v1.Judge (JudgePairs; ScoreSequences is not used by the coordinator). */
export class JudgeDouble {
  readonly calls: JudgePairsRequest[] = [];
  perItemMs: number;
  private constructor(
    readonly server: RunningServer,
    options: DoubleOptions,
  ) {
    this.perItemMs = options.perItemMs ?? 0;
  }

  static async start(options: DoubleOptions = {}): Promise<JudgeDouble> {
    let self: JudgeDouble | undefined;
    const server = await serve(
      'judge-double',
      [
        binding(JudgeService, {
          scoreSequences: async () => {
            throw new Error('ScoreSequences is not implemented by the test double');
          },
          judgePairs: async (request: JudgePairsRequest, call: grpc.ServerWritableStream<JudgePairsRequest, JudgePairsResponse>) => {
            self!.calls.push(request);
            const result = await fakeJudgePairs(request, {
              beforeItem: async (done, total) => {
                if (self!.perItemMs) await sleep(self!.perItemMs);
                if (call.cancelled) throw new CallCancelled();
                call.write({ event: { $case: 'progress', value: { done, total, unit: 'pairs', tokensPerSecond: 0, etaSeconds: 0 } } });
              },
            });
            call.write({ event: { $case: 'result', value: result } });
          },
        }),
      ],
      options.port,
    );
    self = new JudgeDouble(server, options);
    return self;
  }

  get address(): string {
    return this.server.address;
  }

  shutdown(): Promise<void> {
    return this.server.shutdown();
  }
}

interface JobEntry {
  job: Job;
  spec: Buffer;
  listeners: Set<(event: WatchJobResponse) => void>;
  cancel: boolean;
}

function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

const FINISHED = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_INTERRUPTED]);

export interface TrainerDoubleOptions {
  /** Optimizer steps per job and the time each takes. */
  steps?: number;
  stepMs?: number;
  port?: number;
}

/**
 * Test double of alignment.v1.Trainer with the real trainer's job semantics: StartJob is idempotent on job_id (the
 * same spec returns the existing job, another spec is ALREADY_EXISTS), jobs run in the background whether or not
 * anyone watches, WatchJob streams steps then the final job, CancelJob stops a job.
 */
export class TrainerDouble {
  readonly jobs = new Map<string, JobEntry>();
  /** Every StartJob's job_id, in order (re-attaches included). */
  readonly startJobCalls: string[] = [];
  /** Job ids of the jobs actually created. */
  readonly createdJobs: string[] = [];
  readonly watchCalls: string[] = [];
  readonly cancelCalls: string[] = [];
  steps: number;
  stepMs: number;
  /** While set, jobs that have done their steps wait for it before finishing (tests hold a job RUNNING). */
  hold: Promise<void> | undefined;

  private constructor(
    readonly server: RunningServer,
    options: TrainerDoubleOptions,
  ) {
    this.steps = options.steps ?? 3;
    this.stepMs = options.stepMs ?? 10;
  }

  static async start(options: TrainerDoubleOptions = {}): Promise<TrainerDouble> {
    let self: TrainerDouble | undefined;
    const server = await serve(
      'trainer-double',
      [
        binding(TrainerService, {
          startJob: async (request: StartJobRequest) => self!.startJob(request),
          watchJob: async (request: WatchJobRequest, call: grpc.ServerWritableStream<WatchJobRequest, WatchJobResponse>) => self!.watchJob(request, call),
          getJob: async (request: GetJobRequest) => ({ job: self!.entry(request.jobId).job }),
          listJobs: async (_request: ListJobsRequest) => ({ jobs: [...self!.jobs.values()].map((e) => e.job), nextPageToken: '' }),
          cancelJob: async (request: { jobId: string }) => {
            self!.cancelCalls.push(request.jobId);
            const entry = self!.entry(request.jobId);
            entry.cancel = true;
            return { job: entry.job };
          },
        }),
      ],
      options.port,
    );
    self = new TrainerDouble(server, options);
    return self;
  }

  get address(): string {
    return this.server.address;
  }

  shutdown(): Promise<void> {
    return this.server.shutdown();
  }

  private entry(jobId: string): JobEntry {
    const entry = this.jobs.get(jobId);
    if (!entry) throw new NotFoundError(`job_id: no job '${jobId}'`);
    return entry;
  }

  private startJob(request: StartJobRequest): { job: Job } {
    this.startJobCalls.push(request.jobId);
    const spec = Buffer.from(JobSpec.encode(request.spec!).finish());
    const existing = this.jobs.get(request.jobId);
    if (existing) {
      if (!existing.spec.equals(spec)) throw serviceError(grpc.status.ALREADY_EXISTS, `job_id: '${request.jobId}' already names a job with a different spec`);
      return { job: existing.job };
    }
    const job: Job = {
      jobId: request.jobId,
      spec: request.spec,
      state: JobState.JOB_STATE_RUNNING,
      metrics: {},
      error: '',
      resumeCount: 0,
      lastCheckpointStep: 0,
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    const entry: JobEntry = { job, spec, listeners: new Set(), cancel: false };
    this.jobs.set(request.jobId, entry);
    this.createdJobs.push(request.jobId);
    void this.run(entry, request.spec!);
    return { job };
  }

  private async run(entry: JobEntry, spec: JobSpec): Promise<void> {
    const emit = (event: WatchJobResponse) => entry.listeners.forEach((listener) => listener(event));
    for (let step = 1; step <= this.steps; step++) {
      await sleep(this.stepMs);
      if (entry.cancel) {
        entry.job = { ...entry.job, state: JobState.JOB_STATE_CANCELLED, error: 'cancelled by CancelJob', updatedAt: new Date() };
        emit({ event: { $case: 'job', value: entry.job } });
        return;
      }
      const value: TrainingStep = { step, totalSteps: this.steps, loss: 0.69 - step * 0.01, metrics: {}, tokensPerSecond: 100, etaSeconds: 0 };
      entry.job = { ...entry.job, progress: { done: step, total: this.steps, unit: 'steps', tokensPerSecond: 100, etaSeconds: 0 } };
      emit({ event: { $case: 'step', value } });
    }
    while (this.hold) await this.hold;
    const { outputs, metrics } = await fakeTrainOutputs(spec);
    entry.job = { ...entry.job, state: JobState.JOB_STATE_SUCCEEDED, outputs, metrics, updatedAt: new Date() };
    emit({ event: { $case: 'job', value: entry.job } });
  }

  private async watchJob(request: WatchJobRequest, call: grpc.ServerWritableStream<WatchJobRequest, WatchJobResponse>): Promise<void> {
    this.watchCalls.push(request.jobId);
    const entry = this.entry(request.jobId);
    if (FINISHED.has(entry.job.state)) {
      call.write({ event: { $case: 'job', value: entry.job } });
      return;
    }
    await new Promise<void>((resolve) => {
      const listener = (event: WatchJobResponse) => {
        if (call.cancelled) return;
        call.write(event);
        if (event.event?.$case === 'job') done();
      };
      const done = () => {
        entry.listeners.delete(listener);
        resolve();
      };
      entry.listeners.add(listener);
      call.once('cancelled', done);
    });
  }
}
