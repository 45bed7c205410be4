import * as grpc from '@grpc/grpc-js';
import {
  GeneratorClient,
  JobState,
  JudgeClient,
  TrainerClient,
  type GenerateRequest,
  type GenerateResult,
  type Job,
  type JobSpec,
  type JudgePairsRequest,
  type JudgePairsResult,
} from '@alignment/contracts';
import { createClient, isServiceError, unaryCall, type Logger } from '@alignment/service-kit';
import {
  ServiceUnavailableError,
  StageAbortedError,
  StageFailedError,
  abortReason,
  sleep,
  withCheckpointInterval,
  type CallContext,
  type Executors,
  type GenerateExecutor,
  type JudgeExecutor,
  type LearnExecutor,
} from '../run';
import { EngineClient } from './engine-client';

// The stage executors over gRPC (generator.proto, judge.proto, trainer.proto). Every call carries a deadline; a
// service that answers UNAVAILABLE is retried with exponential backoff (the next replica first, when there are
// several) and, once the retries are spent, fails the stage with ServiceUnavailableError naming it.

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Backoff before the second attempt; doubles up to maxBackoffMs. */
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export interface GrpcExecutorOptions {
  /** Generator replicas; shard k goes to address k mod n (and to the next one when that one is unavailable). */
  generatorAddresses: string[];
  judgeAddresses: string[];
  trainerAddress: string;
  /** Deadline of unary calls (StartJob, GetJob, CancelJob). */
  rpcDeadlineMs: number;
  /** Deadline of one streaming call (a Generate or JudgePairs shard, one WatchJob). */
  stageDeadlineMs: number;
  retry: RetryOptions;
  /**
   * Trainer checkpoint interval for jobs whose hyper-parameters set none (0): a trainer killed mid-LEARN then
   * resumes its job from the last checkpoint instead of the run ending INTERRUPTED at step 0. Unset: jobs as given.
   */
  checkpointEverySteps?: number;
  logger: Logger;
}

function backoff(retry: RetryOptions, attempt: number): number {
  return Math.min(retry.maxBackoffMs, retry.initialBackoffMs * 2 ** (attempt - 1));
}

function isUnavailable(error: unknown): boolean {
  return isServiceError(error) && error.code === grpc.status.UNAVAILABLE;
}

/** A service's error answer as a stage failure (client errors and server errors alike: the stage cannot go on). */
function answeredWith(service: string, address: string, error: unknown): Error {
  if (error instanceof StageFailedError || error instanceof StageAbortedError || error instanceof ServiceUnavailableError) return error;
  if (isServiceError(error)) return new StageFailedError(`${service} at ${address} answered ${grpc.status[error.code]}: ${error.details}`);
  return error as Error;
}

type ClientConstructor<C> = new (address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>) => C;

/** The client class with extra channel options merged into whatever its creator passes. */
function withChannelOptions<C extends grpc.Client>(Ctor: ClientConstructor<C>, extra: Partial<grpc.ClientOptions>): ClientConstructor<C> {
  return class extends (Ctor as unknown as new (...args: ConstructorParameters<ClientConstructor<C>>) => grpc.Client) {
    constructor(address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>) {
      super(address, credentials, { ...options, ...extra });
    }
  } as unknown as ClientConstructor<C>;
}

class ClientPool<C extends grpc.Client> {
  private readonly clients = new Map<string, C>();

  constructor(
    private readonly Ctor: ClientConstructor<C>,
    private readonly options: GrpcExecutorOptions,
  ) {}

  /**
   * service-kit's createClient (size limits, default deadline, tracing, UNAVAILABLE retries of unary calls, round
   * robin over resolved addresses) with the reconnect backoff capped like the coordinator's own retries: grpc-js
   * otherwise backs off up to 120 s after a service was down, and a stage resumed once the service is back would
   * fail fast on a channel still waiting to reconnect.
   */
  get(address: string): C {
    let client = this.clients.get(address);
    if (!client) {
      const retry = this.options.retry;
      client = createClient(
        withChannelOptions(this.Ctor, { 'grpc.initial_reconnect_backoff_ms': retry.initialBackoffMs, 'grpc.max_reconnect_backoff_ms': retry.maxBackoffMs }),
        address,
        { defaultDeadlineMs: this.options.rpcDeadlineMs, retry: { maxAttempts: retry.attempts, initialBackoffMs: retry.initialBackoffMs, maxBackoffMs: retry.maxBackoffMs } },
      );
      this.clients.set(address, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** Consumes a server stream; aborting the signal cancels the call and rejects with StageAbortedError. */
function consume<T>(call: grpc.ClientReadableStream<T>, signal: AbortSignal, onMessage: (message: T) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => call.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = (error?: unknown) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) reject(new StageAbortedError(abortReason(signal)));
      else if (error) reject(error);
      else resolve();
    };
    call.on('data', (message: T) => {
      try {
        onMessage(message);
      } catch (error) {
        call.cancel();
        settle(error);
      }
    });
    call.on('error', (error) => settle(error));
    call.on('end', () => settle());
    if (signal.aborted) onAbort();
  });
}

/** Retries `fn` on UNAVAILABLE (re-running a whole generate/judge call is safe: outputs are written atomically). */
async function withUnavailableRetries<T>(
  service: string,
  addresses: readonly string[],
  first: number,
  retry: RetryOptions,
  signal: AbortSignal,
  fn: (address: string) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const address = addresses[(first + attempt - 1) % addresses.length];
    try {
      return await fn(address);
    } catch (error) {
      if (signal.aborted) throw new StageAbortedError(abortReason(signal));
      if (!isUnavailable(error)) throw answeredWith(service, address, error);
      if (attempt >= retry.attempts) throw new ServiceUnavailableError(service, address, attempt, (error as grpc.ServiceError).details);
      await sleep(backoff(retry, attempt), signal);
    }
  }
}

export class GrpcGenerateExecutor implements GenerateExecutor {
  private readonly pool: ClientPool<GeneratorClient>;

  constructor(private readonly options: GrpcExecutorOptions) {
    if (options.generatorAddresses.length === 0) throw new Error('no generator address');
    this.pool = new ClientPool(GeneratorClient, options);
  }

  generate(request: GenerateRequest, ctx: CallContext): Promise<GenerateResult> {
    const addresses = this.options.generatorAddresses;
    return withUnavailableRetries('generator', addresses, request.shard?.index ?? 0, this.options.retry, ctx.signal, async (address) => {
      const client = this.pool.get(address);
      let result: GenerateResult | undefined;
      await consume(client.generate(request, new grpc.Metadata(), { deadline: Date.now() + this.options.stageDeadlineMs }), ctx.signal, (message) => {
        if (message.event?.$case === 'progress') ctx.onProgress(message.event.value);
        else if (message.event?.$case === 'result') result = message.event.value;
      });
      if (!result) throw new StageFailedError(`generator at ${address} ended its stream without a result`);
      return result;
    });
  }

  close(): void {
    this.pool.close();
  }
}

/**
 * JudgePairs over the judge replicas (`options.judgeAddresses`), or over `addresses` under another name: the gold
 * judge of a RunSpec's evaluation.gold_judge_address is the same contract at the user's address.
 */
export class GrpcJudgeExecutor implements JudgeExecutor {
  private readonly pool: ClientPool<JudgeClient>;

  constructor(
    private readonly options: GrpcExecutorOptions,
    private readonly addresses: readonly string[] = options.judgeAddresses,
    private readonly service = 'judge',
  ) {
    if (addresses.length === 0) throw new Error(`no ${service} address`);
    this.pool = new ClientPool(JudgeClient, options);
  }

  judgePairs(request: JudgePairsRequest, ctx: CallContext): Promise<JudgePairsResult> {
    const service = this.service;
    return withUnavailableRetries(service, this.addresses, request.shard?.index ?? 0, this.options.retry, ctx.signal, async (address) => {
      const client = this.pool.get(address);
      let result: JudgePairsResult | undefined;
      await consume(client.judgePairs(request, new grpc.Metadata(), { deadline: Date.now() + this.options.stageDeadlineMs }), ctx.signal, (message) => {
        if (message.event?.$case === 'progress') ctx.onProgress(message.event.value);
        else if (message.event?.$case === 'result') result = message.event.value;
      });
      if (!result) throw new StageFailedError(`${service} at ${address} ended its stream without a result`);
      return result;
    });
  }

  close(): void {
    this.pool.close();
  }
}

const FINISHED: ReadonlySet<JobState> = new Set([
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
  JobState.JOB_STATE_INTERRUPTED,
]);

/**
 * A LEARN stage's trainer job: StartJob under the stage's deterministic job id (idempotent on the trainer: a
 * restarted coordinator gets the job it started before), then WatchJob until the job ends. A watch that breaks
 * because the trainer restarts (UNAVAILABLE) is re-attached; one that passes its deadline fails the stage but
 * leaves the job running, and resuming the run re-attaches to it.
 */
export class GrpcLearnExecutor implements LearnExecutor {
  private readonly pool: ClientPool<TrainerClient>;

  constructor(private readonly options: GrpcExecutorOptions) {
    this.pool = new ClientPool(TrainerClient, options);
  }

  private async unary<Res>(what: string, call: () => Promise<Res>): Promise<Res> {
    try {
      return await call();
    } catch (error) {
      const address = this.options.trainerAddress;
      if (isUnavailable(error)) throw new ServiceUnavailableError('trainer', address, this.options.retry.attempts, `${what}: ${(error as grpc.ServiceError).details}`);
      if (isServiceError(error) && error.code === grpc.status.ALREADY_EXISTS) {
        throw new StageFailedError(`trainer at ${address}: ${what}: ${error.details} (the job id is derived from the run, round and attempt)`);
      }
      throw answeredWith('trainer', address, error);
    }
  }

  async train(jobId: string, requested: JobSpec, ctx: CallContext): Promise<Job> {
    const client = this.pool.get(this.options.trainerAddress);
    // Deterministic in the request, so a restarted coordinator re-attaching to the job sends the same spec.
    const spec: JobSpec = withCheckpointInterval(requested, this.options.checkpointEverySteps);
    const deadlineMs = this.options.rpcDeadlineMs;
    let job = (await this.unary('StartJob', () => unaryCall(client, client.startJob, { jobId, spec }, { deadlineMs }))).job!;
    let unavailable = 0;
    while (!FINISHED.has(job.state)) {
      if (ctx.signal.aborted) return this.abandon(jobId, ctx.signal);
      try {
        const watch = client.watchJob({ jobId }, new grpc.Metadata(), { deadline: Date.now() + this.options.stageDeadlineMs });
        await consume(watch, ctx.signal, (message) => {
          unavailable = 0;
          if (message.event?.$case === 'step') {
            const step = message.event.value;
            ctx.onProgress({ done: step.step, total: step.totalSteps, unit: 'steps', tokensPerSecond: step.tokensPerSecond, etaSeconds: step.etaSeconds });
          } else if (message.event?.$case === 'job') {
            job = message.event.value;
          }
        });
      } catch (error) {
        if (error instanceof StageAbortedError) return this.abandon(jobId, ctx.signal);
        if (isServiceError(error) && error.code === grpc.status.DEADLINE_EXCEEDED) {
          throw new StageFailedError(
            `trainer job ${jobId} did not finish within ${this.options.stageDeadlineMs} ms; it keeps running, and StartRun with the same run_id re-attaches to it`,
          );
        }
        if (!isUnavailable(error)) throw answeredWith('trainer', this.options.trainerAddress, error);
        unavailable += 1;
        if (unavailable >= this.options.retry.attempts) {
          throw new ServiceUnavailableError('trainer', this.options.trainerAddress, unavailable, `WatchJob: ${(error as grpc.ServiceError).details}`);
        }
        this.options.logger.info({ job_id: jobId, attempt: unavailable }, 'trainer unavailable while watching; re-attaching');
        await sleep(backoff(this.options.retry, unavailable), ctx.signal).catch(() => undefined);
      }
      if (!FINISHED.has(job.state)) {
        if (ctx.signal.aborted) return this.abandon(jobId, ctx.signal);
        job = (await this.unary('GetJob', () => unaryCall(client, client.getJob, { jobId }, { deadlineMs }))).job!;
      }
    }
    switch (job.state) {
      case JobState.JOB_STATE_SUCCEEDED:
        return job;
      case JobState.JOB_STATE_INTERRUPTED:
        throw new StageFailedError(`trainer job ${jobId} was interrupted: ${job.error}`, true);
      case JobState.JOB_STATE_CANCELLED:
        throw new StageFailedError(`trainer job ${jobId} was cancelled${job.error ? `: ${job.error}` : ''}`);
      default:
        throw new StageFailedError(`trainer job ${jobId} failed: ${job.error}`);
    }
  }

  /**
   * Stops waiting; a cancelled run also cancels its job, a shutdown leaves it running for the next coordinator. A
   * cancelled job is waited for (up to the unary deadline) until it has ended, so that a run reported CANCELLED has no
   * trainer still writing into its directory (DeleteRun right after would otherwise leave the job's last files).
   */
  private async abandon(jobId: string, signal: AbortSignal): Promise<never> {
    const reason = abortReason(signal);
    if (reason === 'cancelled') {
      const client = this.pool.get(this.options.trainerAddress);
      const deadlineMs = this.options.rpcDeadlineMs;
      try {
        await unaryCall(client, client.cancelJob, { jobId }, { deadlineMs });
        const until = Date.now() + deadlineMs;
        while (Date.now() < until) {
          const { job } = await unaryCall(client, client.getJob, { jobId }, { deadlineMs });
          if (job && FINISHED.has(job.state)) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } catch (error) {
        this.options.logger.warn({ job_id: jobId, err: error }, 'could not cancel the trainer job');
      }
    }
    throw new StageAbortedError(reason);
  }

  close(): void {
    this.pool.close();
  }
}

/**
 * The three executors over gRPC (evaluation is composed of the generator and the judge by the engine), and the
 * user's judges: the gold judges of evaluation.gold_judge_address and the round judges of judge_address, one client
 * per address, made on first use. They are dialled as the stack's services are (service-kit's createClient: TLS when
 * this process has TLS_CA_FILE, plaintext otherwise).
 */
export function grpcExecutors(options: GrpcExecutorOptions): Executors & { close(): void } {
  const generate = new GrpcGenerateExecutor(options);
  const judge = new GrpcJudgeExecutor(options);
  const learn = new GrpcLearnExecutor(options);
  const external = new Map<string, GrpcJudgeExecutor>();
  const judgeAt = (service: string) => (address: string) => {
    const key = `${service}\n${address}`;
    let executor = external.get(key);
    if (!executor) {
      executor = new GrpcJudgeExecutor(options, [address], service);
      external.set(key, executor);
    }
    return executor;
  };
  return {
    generate,
    judge,
    learn,
    goldJudge: judgeAt('gold judge'),
    roundJudge: judgeAt('judge of judge_address'),
    engine: (baseUrl: string) => new EngineClient(baseUrl),
    close: () => {
      generate.close();
      judge.close();
      learn.close();
      for (const executor of external.values()) executor.close();
    },
  };
}
