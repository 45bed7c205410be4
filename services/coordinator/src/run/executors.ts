import type {
  ArtifactRef,
  EvaluationConfig,
  GenerateRequest,
  GenerateResult,
  Job,
  JobSpec,
  JudgePairsRequest,
  JudgePairsResult,
  ModelRef,
  Progress,
  PromptEncoding,
} from '@alignment/contracts';

// The stage executors the run engine drives, as small interfaces: the gRPC implementations live in src/clients/,
// in-process fakes in src/testing/. Requests and results are the contracts' messages, so an executor is a thin
// transport; sharding, merging and everything that makes a stage resumable is the engine's.

/** What one call of an executor gets besides its request. */
export interface CallContext {
  /**
   * Aborted when the run is cancelled (`reason` = 'cancelled') or the coordinator shuts down ('shutdown'). An
   * executor stops waiting and rejects with StageAbortedError; on 'cancelled' it also cancels remote work it owns
   * (a trainer job); on 'shutdown' it leaves that work running, so a restarted coordinator re-attaches to it.
   */
  signal: AbortSignal;
  /** Progress of the call (generator prompts, judge pairs, trainer steps). */
  onProgress(progress: Progress): void;
  /** For error messages: e.g. "round 1 GENERATE". */
  label: string;
}

export type AbortReason = 'cancelled' | 'shutdown';

/** Samples responses: one call per shard (request.shard). Writes request.output_uri and resolves when it exists. */
export interface GenerateExecutor {
  generate(request: GenerateRequest, ctx: CallContext): Promise<GenerateResult>;
}

/** Labels pairs: one call per shard. Writes request.output_uri and resolves with the counts. */
export interface JudgeExecutor {
  judgePairs(request: JudgePairsRequest, ctx: CallContext): Promise<JudgePairsResult>;
}

/**
 * Runs one training job to completion: starts it under `jobId` or, when a job with that id exists (a coordinator
 * restarted mid-stage), attaches to it; resolves with the SUCCEEDED job, rejects with StageFailedError when the job
 * FAILED / was CANCELLED / INTERRUPTED.
 */
export interface LearnExecutor {
  train(jobId: string, spec: JobSpec, ctx: LearnCallContext): Promise<Job>;
}

export interface LearnCallContext extends CallContext {
  /**
   * The attempt's directory on the coordinator's data volume (`<stage dir>/attempt-<k>`): where a trainer that
   * shares that volume (a Kubernetes LEARN Job) trains a job whose output_uri is s3://, before it publishes there.
   */
  stagingDir?: string;
}

export interface EvaluateRequest {
  round: number;
  /** π_t, the model of this round's LEARN. */
  policy: ModelRef;
  /** π_init. */
  baseModel: ModelRef;
  /** Held-out prompts (pinned sha256). */
  prompts: ArtifactRef;
  config: EvaluationConfig;
  /** How string prompts are encoded when π_t and π_init sample (RunSpec.prompt_encoding, resolved). */
  promptEncoding: PromptEncoding;
  /**
   * π_init's fixed sample per prompt, generated once per run (by round 0's EVALUATE). Absent in round 0: the
   * evaluator generates it with `baselineSeed` and returns it as output `baseline`.
   */
  baseline?: ArtifactRef;
  /** The round's self-labelled pairs (rounds ≥ 1): with a RULE evaluator, their accuracy against it is measured. */
  selfLabelledPairs?: ArtifactRef;
  seeds: { policy: number; baseline: number; bootstrap: number };
  generatorShards: number;
  judgeShards: number;
  /** The stage directory: outputs go here, per-shard intermediates under work/. */
  dir: string;
}

export interface EvaluateResult {
  /** Named outputs (files), each with its sha256. */
  outputs: Record<string, ArtifactRef>;
  /** eval/*, judge/self_label_accuracy… */
  metrics: Record<string, number>;
  /** Said loudly on the stage event (e.g. self-labels below chance). */
  warnings: string[];
}

/** One round's evaluation against π_init (docs/algorithm.md / docs/benchmark.md metrics). */
export interface EvaluateExecutor {
  evaluate(request: EvaluateRequest, ctx: CallContext): Promise<EvaluateResult>;
}

/**
 * Runtime model loading of an OpenAI-compatible engine (RunSpec.engine): vLLM's /v1/load_lora_adapter and
 * /v1/unload_lora_adapter, and /v1/models (clients/engine-client.ts). Failures are StageFailedError naming the engine.
 */
export interface EngineModelLoader {
  readonly baseUrl: string;
  /** The model names the engine serves now. */
  models(signal?: AbortSignal): Promise<string[]>;
  /** Loads the model at `path` (as the engine reads it) under `name`. */
  load(name: string, path: string, signal?: AbortSignal): Promise<void>;
  unload(name: string, signal?: AbortSignal): Promise<void>;
}

export interface Executors {
  generate: GenerateExecutor;
  judge: JudgeExecutor;
  learn: LearnExecutor;
  /** Default: PairwiseEvaluator over `generate` and `judge` (and `goldJudge`). */
  evaluate?: EvaluateExecutor;
  /** The judge at a RunSpec's evaluation.gold_judge_address; without it such a run's evaluation fails. */
  goldJudge?: (address: string) => JudgeExecutor;
  /** The judge at a RunSpec's judge_address (rounds' JUDGE stages); without it such a run's JUDGE fails. */
  roundJudge?: (address: string) => JudgeExecutor;
  /** The loader of the engine at a RunSpec's engine.base_url; without it such a run fails at its first GENERATE. */
  engine?: (baseUrl: string) => EngineModelLoader;
}

/** What the stages call: the executors with the evaluator in place (the gold judges are the evaluator's). */
export type StageExecutors = Required<Omit<Executors, 'goldJudge' | 'roundJudge' | 'engine'>> & Pick<Executors, 'roundJudge' | 'engine'>;

// ------------------------------------------------------------------------------------------------------- errors

/**
 * Thrown by an executor when a service stayed UNAVAILABLE through every retry (it is down, not merely busy). The
 * run is marked FAILED with this message, which names the service, its address and the stage.
 */
export class ServiceUnavailableError extends Error {
  constructor(
    readonly service: string,
    readonly address: string,
    readonly attempts: number,
    detail: string,
  ) {
    super(`${service} at ${address} unavailable after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${detail}`);
    this.name = 'ServiceUnavailableError';
  }
}

/**
 * Thrown when a stage cannot complete: a service answered with an error, a trainer job failed, or a result did not
 * match what was asked. `interrupted` marks failures a resume may fix without any change (a trainer job
 * INTERRUPTED by its own restart): the run becomes INTERRUPTED instead of FAILED. `serviceUnavailable` marks a
 * service that stayed UNAVAILABLE through every retry (ServiceUnavailableError). The coordinator resumes a run
 * that failed either way by itself, within its budget (auto-resume.ts).
 */
export class StageFailedError extends Error {
  constructor(
    message: string,
    readonly interrupted = false,
    readonly serviceUnavailable = false,
  ) {
    super(message);
    this.name = 'StageFailedError';
  }
}

/** Thrown by executors (and the engine) when the call's signal aborted; `reason` says why. */
export class StageAbortedError extends Error {
  constructor(readonly reason: AbortReason) {
    super(reason === 'cancelled' ? 'the run was cancelled' : 'the coordinator is shutting down');
    this.name = 'StageAbortedError';
  }
}

export function abortReason(signal: AbortSignal): AbortReason {
  return signal.reason === 'cancelled' ? 'cancelled' : 'shutdown';
}

/** Rejects with StageAbortedError when the signal aborts; resolves otherwise after `ms`. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new StageAbortedError(abortReason(signal)));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new StageAbortedError(abortReason(signal)));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
