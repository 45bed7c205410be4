import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT_CONTEXT, SpanStatusCode, TraceFlags, trace, type Context, type Span } from '@opentelemetry/api';
import { writeFileAtomic } from '@alignment/artifacts';
import {
  JobState,
  JudgeMethod,
  RunSpec,
  Stage,
  type ArtifactRef,
  type JudgePairsRequest,
  type ModelRef,
  type Progress,
  type RoundMetrics,
  type Run,
} from '@alignment/contracts';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@alignment/errors';
import { tracer, withSpan, type Logger } from '@alignment/service-kit';
import { configurationPlan, roundJudgeMethod } from './configurations';
import { readObjects, readPrompts, writeJsonl } from './data';
import { PairwiseEvaluator, readPinned } from './evaluate';
import {
  StageAbortedError,
  StageFailedError,
  ServiceUnavailableError,
  abortReason,
  type CallContext,
  type EvaluateExecutor,
  type Executors,
} from './executors';
import { preferenceJobSpec } from './job-spec';
import { flipLabels } from './label-noise';
import { mean, trainerMetricName } from './metrics';
import { planStages, type PlannedStage } from './plan';
import { splitPrompts, roundFractions } from './prompt-split';
import { deriveSeed } from './seeds';
import { generateSharded, judgeSharded } from './shards';
import { checkRunId, validateSpec } from './run-spec';
import { STAGE_MANIFEST, stageName, verifyOutput, verifyStage, writeStageManifest, type StageOutput } from './stage-manifest';
import { isTerminal, type RunRow, type RunStore } from './store';

/** Thrown by StartRun when the run id exists with a different spec (mapped to ALREADY_EXISTS). */
export class RunConflictError extends Error {
  constructor(runId: string) {
    super(`run_id '${runId}' already names a run with a different spec; choose another run_id`);
    this.name = 'RunConflictError';
  }
}

/** Thrown when a request arrives while the coordinator shuts down (mapped to UNAVAILABLE: retry elsewhere/later). */
export class ShuttingDownError extends Error {
  constructor() {
    super('the coordinator is shutting down; runs resume when it restarts');
    this.name = 'ShuttingDownError';
  }
}

/** What WatchRun streams. */
export type RunEvent =
  | { kind: 'stage'; round: number; stage: Stage; state: JobState; message: string }
  | { kind: 'progress'; round: number; stage: Stage; progress: Progress }
  | { kind: 'metrics'; metrics: RoundMetrics }
  | { kind: 'ended'; run: Run }
  | { kind: 'shutdown' };

export interface EngineOptions {
  store: RunStore;
  /** Root of the artifacts: $DATA_DIR/runs/<run_id>/round-<t>/<stage>/. Must be absolute. */
  dataDir: string;
  executors: Executors;
  logger: Logger;
}

const RESUMABLE: readonly JobState[] = [JobState.JOB_STATE_FAILED, JobState.JOB_STATE_INTERRUPTED, JobState.JOB_STATE_CANCELLED];

/** Outputs of the stages done so far in one execution, by `${round}:${stage}`. */
type Outputs = Map<string, Record<string, StageOutput>>;

interface Execution {
  controller: AbortController;
  done: Promise<void>;
}

interface StageResult {
  outputs: Record<string, StageOutput>;
  metrics: Record<string, number>;
  warnings?: string[];
  jobId?: string;
}

interface StageInputs {
  inputs: Record<string, string>;
  seed: number;
}

const key = (round: number, stage: Stage) => `${round}:${stage}`;
const label = (round: number, stage: Stage) => `round ${round} ${stageName(stage)}`;
const file = (ref: ArtifactRef): StageOutput => ({ uri: ref.uri, sha256: ref.sha256, sizeBytes: ref.sizeBytes, kind: 'file' });
const ref = (output: StageOutput): ArtifactRef => ({ uri: output.uri, sha256: output.sha256, sizeBytes: output.sizeBytes });
const identityOf = (ref: ArtifactRef | undefined) => (ref?.sha256 ? ref.sha256 : ref?.uri ?? '');

/**
 * Runs as a durable state machine (ARCHITECTURE.md "Data flow of one round"): the stages of planStages, each keyed
 * by (run, round, stage), each ending with its outputs in place and a verified stage.json (stage-manifest.ts), each
 * recorded in SQLite. A run resumes — after kill -9, a failure, or a cancel — at the first stage without a
 * complete, verified output; a stage that was in flight is executed again (its partial outputs were never renamed
 * into place), and a trainer job it had started is re-attached by its deterministic job id.
 */
export class RunEngine {
  private readonly executions = new Map<string, Execution>();
  private readonly events = new EventEmitter();
  private readonly evaluator: EvaluateExecutor;
  private stopping = false;

  constructor(private readonly options: EngineOptions) {
    if (!path.isAbsolute(options.dataDir)) throw new Error(`dataDir must be absolute, got ${options.dataDir}`);
    this.events.setMaxListeners(0);
    this.evaluator = options.executors.evaluate ?? new PairwiseEvaluator(options.executors.generate, options.executors.judge);
  }

  private get store(): RunStore {
    return this.options.store;
  }

  private get log(): Logger {
    return this.options.logger;
  }

  stageDir(runId: string, round: number, stage: Stage): string {
    return path.join(this.options.dataDir, 'runs', runId, `round-${round}`, stageName(stage).toLowerCase());
  }

  // ------------------------------------------------------------------------------------------------------ API

  /**
   * Starts a run. With a run_id that exists: the same spec returns that run — resuming it first when it FAILED, was
   * INTERRUPTED or CANCELLED — and a different spec is a RunConflictError. A new run's spec is validated first
   * (InvalidArgumentError naming the field).
   */
  async startRun(request: { runId?: string; spec: RunSpec }): Promise<Run> {
    if (this.stopping) throw new ShuttingDownError();
    const runId = request.runId || `run-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').toLowerCase()}-${randomBytes(3).toString('hex')}`;
    checkRunId(runId);
    const requestSpec = Buffer.from(RunSpec.encode(RunSpec.fromPartial(request.spec)).finish());
    const existing = this.store.findRun(runId);
    if (existing) return this.restart(existing, requestSpec);
    const validated = await validateSpec(request.spec);
    const raced = this.store.findRun(runId);
    if (raced) return this.restart(raced, requestSpec);

    const span = tracer().startSpan('coordinator.run', {
      root: true,
      attributes: { 'run.id': runId, 'run.name': validated.spec.name, 'run.configuration': validated.plan.name, 'run.rounds': validated.rounds },
    });
    const { traceId, spanId } = span.spanContext();
    this.store.createRun({ runId, spec: validated.spec, requestSpec, traceId, rootSpanId: spanId, nonce: randomBytes(4).toString('hex') });
    this.log.info({ run_id: runId, trace_id: traceId, configuration: validated.plan.name, rounds: validated.rounds }, 'run started');
    this.launch(runId, span);
    return this.getRun(runId);
  }

  private restart(row: RunRow, requestSpec: Buffer): Run {
    if (!row.requestSpec.equals(requestSpec)) throw new RunConflictError(row.runId);
    if (RESUMABLE.includes(row.state) && !this.executions.has(row.runId)) {
      if (this.store.setRunState(row.runId, JobState.JOB_STATE_RUNNING, { allowedFrom: RESUMABLE })) {
        this.log.info({ run_id: row.runId, from: JobState[row.state] }, 'run resumed by StartRun');
        this.launch(row.runId);
      }
    }
    return this.getRun(row.runId);
  }

  /** Resumes every run that was RUNNING when the last coordinator stopped (or died). Returns their ids. */
  resumeAll(): string[] {
    const ids = this.store.runIdsInState([JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_PENDING]);
    for (const runId of ids) {
      if (this.executions.has(runId)) continue;
      this.log.info({ run_id: runId }, 'resuming run');
      this.launch(runId);
    }
    return ids;
  }

  getRun(runId: string): Run {
    const row = this.store.findRun(runId);
    if (!row) throw new NotFoundError(`run_id: no run '${runId}'`);
    return this.store.toRun(row);
  }

  /** Runs in creation order after the page token (the last run's sequence number). */
  listRuns(pageSize: number, pageToken: string): { runs: Run[]; nextPageToken: string } {
    const after = pageToken === '' ? 0 : Number(pageToken);
    if (!Number.isInteger(after) || after < 0) throw new InvalidArgumentError('page_token', 'not a token from a previous ListRuns response');
    const rows = this.store.listRuns(after, pageSize + 1);
    const page = rows.slice(0, pageSize);
    return { runs: page.map((r) => this.store.toRun(r)), nextPageToken: rows.length > pageSize ? String(page[page.length - 1].seq) : '' };
  }

  /**
   * Cancels a run: the stage in flight is aborted (a trainer job it owns is cancelled too) and the run ends
   * CANCELLED. A FAILED or INTERRUPTED run becomes CANCELLED; a SUCCEEDED one cannot be cancelled.
   */
  async cancelRun(runId: string): Promise<Run> {
    const row = this.store.findRun(runId);
    if (!row) throw new NotFoundError(`run_id: no run '${runId}'`);
    if (row.state === JobState.JOB_STATE_SUCCEEDED) throw new FailedPreconditionError(`run '${runId}' already succeeded`);
    const execution = this.executions.get(runId);
    if (execution) {
      execution.controller.abort('cancelled');
      await execution.done;
    } else if (row.state !== JobState.JOB_STATE_CANCELLED) {
      this.store.setRunState(runId, JobState.JOB_STATE_CANCELLED, { error: 'cancelled by CancelRun' });
      this.emit(runId, { kind: 'ended', run: this.getRun(runId) });
    }
    return this.getRun(runId);
  }

  /**
   * Subscribes to a run's events. `initial` is the current state for a watcher that joins late: the metrics of the
   * rounds so far and the stage in flight — or, for a run that has ended, just the final run.
   */
  watch(runId: string, listener: (event: RunEvent) => void): { initial: RunEvent[]; unsubscribe: () => void } {
    const onEvent = (event: RunEvent) => listener(event);
    const onShutdown = () => listener({ kind: 'shutdown' });
    this.events.on(runId, onEvent);
    this.events.on('shutdown', onShutdown);
    const unsubscribe = () => {
      this.events.off(runId, onEvent);
      this.events.off('shutdown', onShutdown);
    };
    let run: Run;
    try {
      run = this.getRun(runId);
    } catch (error) {
      unsubscribe();
      throw error;
    }
    // Terminal states are only written by an ending execution (whose 'ended' event may already be gone) or outside
    // one, and a resume sets RUNNING before it launches: a terminal run has nothing more to stream.
    if (isTerminal(run.state)) return { initial: [{ kind: 'ended', run }], unsubscribe };
    const initial: RunEvent[] = run.rounds.map((metrics) => ({ kind: 'metrics', metrics }));
    const current = run.stages.find((s) => s.round === run.currentRound && s.stage === run.currentStage);
    if (current) {
      initial.push({ kind: 'stage', round: current.round, stage: current.stage, state: current.state, message: 'current stage' });
    }
    return { initial, unsubscribe };
  }

  /** Stops executing (runs stay RUNNING in the database and resume at the next start) and ends every watch. */
  async stop(): Promise<void> {
    this.stopping = true;
    const executions = [...this.executions.values()];
    for (const execution of executions) execution.controller.abort('shutdown');
    await Promise.all(executions.map((e) => e.done));
    this.events.emit('shutdown');
  }

  /** Resolves when the run's current execution (if any) has settled. For tests and shutdown. */
  async settled(runId: string): Promise<void> {
    await this.executions.get(runId)?.done;
  }

  // -------------------------------------------------------------------------------------------------- execution

  private emit(runId: string, event: RunEvent): void {
    this.events.emit(runId, event);
  }

  private launch(runId: string, rootSpan?: Span): void {
    const controller = new AbortController();
    const done = this.execute(runId, controller.signal, rootSpan)
      .catch((error) => this.log.error({ err: error, run_id: runId }, 'run execution crashed'))
      .finally(() => this.executions.delete(runId));
    this.executions.set(runId, { controller, done });
  }

  private async execute(runId: string, signal: AbortSignal, rootSpan?: Span): Promise<void> {
    const row = this.store.findRun(runId)!;
    // One trace per run: a resumed execution is a child of the root span, whose context the database kept.
    const span =
      rootSpan ??
      tracer().startSpan(
        'coordinator.run.resume',
        { attributes: { 'run.id': runId } },
        trace.setSpanContext(ROOT_CONTEXT, { traceId: row.traceId, spanId: row.rootSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true }),
      );
    const runCtx = trace.setSpan(ROOT_CONTEXT, span);
    const outputs: Outputs = new Map();
    try {
      for (const planned of planStages(row.spec)) {
        if (signal.aborted) throw new StageAbortedError(abortReason(signal));
        await this.runStage(row, planned, outputs, signal, runCtx);
      }
      this.store.setRunState(runId, JobState.JOB_STATE_SUCCEEDED, { allowedFrom: [JobState.JOB_STATE_RUNNING] });
      span.setStatus({ code: SpanStatusCode.OK });
      this.log.info({ run_id: runId }, 'run succeeded');
      this.emit(runId, { kind: 'ended', run: this.getRun(runId) });
    } catch (error) {
      if (error instanceof StageAbortedError && error.reason === 'shutdown') {
        span.setAttribute('run.stopped_by_shutdown', true);
        this.log.info({ run_id: runId }, 'run paused by shutdown; it resumes at the next start');
        return;
      }
      if (error instanceof StageAbortedError) {
        this.store.setRunState(runId, JobState.JOB_STATE_CANCELLED, { error: 'cancelled by CancelRun' });
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'cancelled' });
        this.log.info({ run_id: runId }, 'run cancelled');
      } else {
        const interrupted = error instanceof StageFailedError && error.interrupted;
        const message = (error as Error).message;
        this.store.setRunState(runId, interrupted ? JobState.JOB_STATE_INTERRUPTED : JobState.JOB_STATE_FAILED, { error: message });
        span.setStatus({ code: SpanStatusCode.ERROR, message });
        this.log.warn({ run_id: runId, error: message }, interrupted ? 'run interrupted' : 'run failed');
      }
      this.emit(runId, { kind: 'ended', run: this.getRun(runId) });
    } finally {
      span.end();
    }
  }

  private async runStage(row: RunRow, planned: PlannedStage, outputs: Outputs, signal: AbortSignal, runCtx: Context): Promise<void> {
    const { round, stage } = planned;
    const runId = row.runId;
    const dir = this.stageDir(runId, round, stage);
    const identity = { runId, round, stage };
    const { inputs, seed } = this.stageInputs(row, planned, outputs);
    const recorded = this.store.getStage(runId, round, stage);
    const verification = await verifyStage(dir, identity, inputs, recorded?.state === JobState.JOB_STATE_SUCCEEDED ? recorded.manifestSha256 : undefined);
    if (verification.ok) {
      outputs.set(key(round, stage), verification.outputs);
      if (recorded?.state !== JobState.JOB_STATE_SUCCEEDED) {
        // The coordinator died after the stage's manifest was written but before the database heard of it.
        this.store.finishStage(runId, round, stage, {
          state: JobState.JOB_STATE_SUCCEEDED,
          outputs: Object.values(verification.outputs).map(ref),
          manifestSha256: verification.manifestSha256,
          metrics: verification.metrics,
        });
      }
      if (stage === Stage.STAGE_LEARN) this.store.setLatestModel(runId, modelOf(verification.outputs));
      this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_SUCCEEDED, message: 'complete and verified; not executed again' });
      return;
    }
    if (recorded) this.log.info({ run_id: runId, round, stage: stageName(stage), reason: verification.reason }, 'executing stage again');

    await fs.promises.rm(path.join(dir, STAGE_MANIFEST), { force: true });
    await fs.promises.rm(path.join(dir, 'work'), { recursive: true, force: true });
    await fs.promises.mkdir(dir, { recursive: true });
    const attempt = this.store.startStage(runId, round, stage);
    this.store.setRunPosition(runId, round, stage);
    this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_RUNNING, message: attempt > 1 ? `attempt ${attempt}` : '' });
    const ctx: CallContext = {
      signal,
      label: label(round, stage),
      onProgress: (progress) => this.emit(runId, { kind: 'progress', round, stage, progress }),
    };
    let result: StageResult;
    try {
      result = await withSpan(
        `coordinator.stage ${stageName(stage)}`,
        async () => {
          switch (stage) {
            case Stage.STAGE_GENERATE:
              return this.generate(row, round, dir, seed, outputs, ctx);
            case Stage.STAGE_JUDGE:
              return this.judge(row, round, dir, outputs, ctx);
            case Stage.STAGE_LEARN:
              return this.learn(row, round, dir, seed, attempt, outputs, ctx);
            case Stage.STAGE_EVALUATE:
              return this.evaluate(row, round, dir, seed, outputs, ctx);
            default:
              throw new Error(`unknown stage ${stage}`);
          }
        },
        { parent: runCtx, attributes: { 'run.id': runId, 'stage.round': round, 'stage.name': stageName(stage), 'stage.attempt': attempt } },
      );
      if (signal.aborted) throw new StageAbortedError(abortReason(signal));
    } catch (error) {
      if (error instanceof StageAbortedError) {
        // A shutdown leaves the stage RUNNING: the next coordinator re-executes (or re-attaches) it.
        if (error.reason === 'cancelled') {
          this.store.finishStage(runId, round, stage, { state: JobState.JOB_STATE_CANCELLED, error: error.message });
          this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_CANCELLED, message: error.message });
        }
        throw error;
      }
      const interrupted = error instanceof StageFailedError && error.interrupted;
      const message = `${label(round, stage)}: ${(error as Error).message}`;
      this.store.finishStage(runId, round, stage, { state: JobState.JOB_STATE_FAILED, error: message });
      this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_FAILED, message });
      if (!(error instanceof StageFailedError || error instanceof ServiceUnavailableError)) {
        this.log.error({ err: error, run_id: runId, round, stage: stageName(stage) }, 'stage failed unexpectedly');
      }
      throw new StageFailedError(message, interrupted);
    }

    const manifestSha256 = await writeStageManifest(dir, identity, {
      attempt,
      seed,
      inputs,
      outputs: result.outputs,
      metrics: result.metrics,
      jobId: result.jobId,
    });
    this.store.finishStage(runId, round, stage, {
      state: JobState.JOB_STATE_SUCCEEDED,
      outputs: Object.values(result.outputs).map(ref),
      manifestSha256,
      metrics: result.metrics,
    });
    outputs.set(key(round, stage), result.outputs);
    if (stage === Stage.STAGE_LEARN) this.store.setLatestModel(runId, modelOf(result.outputs));
    for (const warning of result.warnings ?? []) this.log.warn({ run_id: runId, round, stage: stageName(stage) }, warning);
    this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_SUCCEEDED, message: (result.warnings ?? []).join('; ') });
    const metrics = this.store.metricsOf(runId).find((m) => m.round === round);
    if (metrics && Object.keys(result.metrics).length > 0) this.emit(runId, { kind: 'metrics', metrics });
  }

  /** The inputs a stage consumes now (their sha256) and its seed: what its stage.json must match to be skipped. */
  private stageInputs(row: RunRow, { round, stage }: PlannedStage, outputs: Outputs): StageInputs {
    const spec = row.spec;
    const seed = deriveSeed(spec.seed, round, stageName(stage));
    const out = (r: number, s: Stage, name: string) => outputs.get(key(r, s))?.[name]?.sha256 ?? '';
    switch (stage) {
      case Stage.STAGE_GENERATE: {
        const prompts = spec.prompts?.$case === 'roundPrompts' ? spec.prompts.value.rounds[round - 1] : spec.prompts?.value.prompts;
        return { seed, inputs: { model: out(round - 1, Stage.STAGE_LEARN, 'model.onnx'), prompts: identityOf(prompts) } };
      }
      case Stage.STAGE_JUDGE:
        return {
          seed,
          inputs: { responses: out(round, Stage.STAGE_GENERATE, 'responses'), policy: out(round - 1, Stage.STAGE_LEARN, 'model.onnx') },
        };
      case Stage.STAGE_LEARN:
        return round === 0
          ? { seed, inputs: { pairs: identityOf(spec.seedPairs), init: identityOf(spec.baseModel?.hfCheckpoint) } }
          : { seed, inputs: { pairs: out(round, Stage.STAGE_JUDGE, 'pairs'), init: out(round - 1, Stage.STAGE_LEARN, 'model.hf_checkpoint') } };
      case Stage.STAGE_EVALUATE: {
        const inputs: Record<string, string> = {
          policy: out(round, Stage.STAGE_LEARN, 'model.onnx'),
          prompts: identityOf(spec.evaluation?.prompts),
        };
        if (round > 0) {
          inputs.baseline = out(0, Stage.STAGE_EVALUATE, 'baseline');
          inputs.pairs = out(round, Stage.STAGE_JUDGE, 'pairs');
        }
        return { seed, inputs };
      }
      default:
        throw new Error(`unknown stage ${stage}`);
    }
  }

  private model(outputs: Outputs, round: number): ModelRef {
    const learned = outputs.get(key(round, Stage.STAGE_LEARN));
    if (!learned) throw new Error(`round ${round} LEARN has no outputs in this execution`);
    return modelOf(learned);
  }

  // ------------------------------------------------------------------------------------------------------ stages

  private async generate(row: RunRow, round: number, dir: string, seed: number, outputs: Outputs, ctx: CallContext): Promise<StageResult> {
    const spec = row.spec;
    const result: StageResult = { outputs: {}, metrics: {} };
    let promptsRef: ArtifactRef;
    let prompts: string[];
    if (spec.prompts?.$case === 'roundPrompts') {
      promptsRef = spec.prompts.value.rounds[round - 1];
      prompts = (await readPrompts(await readPinned(promptsRef, `round ${round}'s prompts`))).map((p) => p.prompt);
    } else {
      const split = spec.prompts!.value;
      const all = await readPrompts(await readPinned(split.prompts!, 'the prompt file'));
      const fractions = roundFractions(split.roundFractions, spec.rounds)!;
      const [start, end] = splitPrompts(all.length, fractions, split.seedFraction ?? 0).rounds[round - 1];
      const slice = all.slice(start, end);
      const info = await writeJsonl(path.join(dir, 'prompts.jsonl'), slice.map((p) => p.value));
      promptsRef = { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes };
      result.outputs.prompts = file(promptsRef);
      prompts = slice.map((p) => p.prompt);
    }
    const generation = spec.generation ?? { n: 0, topK: 0, maxNewTokens: 0, stop: [], seed: 0, greedy: false };
    const generated = await generateSharded(
      {
        executor: this.options.executors.generate,
        request: { model: this.model(outputs, round - 1), prompts: { $case: 'promptSet', value: promptsRef }, params: { ...generation, n: generation.n || 2, seed } },
        prompts,
        shards: spec.sharding?.generatorShards ?? 0,
        workDir: path.join(dir, 'work'),
        name: 'responses',
        destination: path.join(dir, 'responses.jsonl'),
      },
      ctx,
    );
    result.outputs.responses = file(generated.responses);
    result.metrics['generate/num_prompts'] = prompts.length;
    result.metrics['generate/num_responses'] = generated.numResponses;
    result.metrics['generate/num_generated_tokens'] = generated.numGeneratedTokens;
    return result;
  }

  private async judge(row: RunRow, round: number, dir: string, outputs: Outputs, ctx: CallContext): Promise<StageResult> {
    const spec = row.spec;
    const responses = ref(outputs.get(key(round, Stage.STAGE_GENERATE))!.responses);
    const items = (await readObjects(await readPinned(responses, `round ${round}'s responses`))).map((l) => l.value);
    const method = roundJudgeMethod(spec.configuration, spec.judgeMethod);
    const request: Omit<JudgePairsRequest, 'shard' | 'outputUri'> = { method, responses };
    if (method === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT) {
      // SPA Eq. 7-8: s(y) = logp_{t-1}(y) - logp_init(y).
      request.spaImplicit = { policy: this.model(outputs, round - 1), reference: spec.baseModel, beta: spec.loss?.beta, tieTolerance: 0, lengthPenalty: 0 };
    } else if (method === JudgeMethod.JUDGE_METHOD_REWARD_MODEL) {
      request.rewardModel = { rewardModel: spec.judgeModel, tieTolerance: 0 };
    } else if (method === JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE) {
      request.llmAsJudge = { judgeModel: spec.judgeModel, tieTolerance: 0 };
    } else {
      throw new StageFailedError(`${configurationPlan(spec.configuration).name} has no judge for its rounds`);
    }
    const judged = await judgeSharded(
      {
        executor: this.options.executors.judge,
        request,
        items,
        shards: spec.sharding?.judgeShards ?? 0,
        workDir: path.join(dir, 'work'),
        name: 'pairs',
        destination: path.join(dir, 'pairs.jsonl'),
      },
      ctx,
    );
    const c = judged.counts;
    if (c.numPairs === 0) {
      throw new StageFailedError(
        `the judge kept no pair out of ${items.length} (identical ${c.droppedIdentical}, ties ${c.droppedTies}, invalid ${c.droppedInvalid}); nothing to learn from`,
      );
    }
    const length = (s: unknown) => String(s).length;
    return {
      outputs: { pairs: file(judged.pairs) },
      metrics: {
        'judge/num_prompts': c.numPrompts,
        'judge/num_pairs': c.numPairs,
        'judge/dropped_identical': c.droppedIdentical,
        'judge/dropped_ties': c.droppedTies,
        'judge/dropped_invalid': c.droppedInvalid,
        // The judge's leaning towards length (BENCHMARK.md: print the judge's systematic leanings).
        'judge/chosen_longer_rate': mean(judged.lines.map((p) => (length(p.chosen) > length(p.rejected) ? 1 : 0))),
        'judge/mean_margin': mean(judged.lines.map((p) => Number(p.margin)).filter(Number.isFinite)),
      },
    };
  }

  private async learn(
    row: RunRow,
    round: number,
    dir: string,
    seed: number,
    attempt: number,
    outputs: Outputs,
    ctx: CallContext,
  ): Promise<StageResult> {
    const spec = row.spec;
    const result: StageResult = { outputs: {}, metrics: {} };
    let pairs: ArtifactRef;
    let init: ArtifactRef;
    if (round === 0) {
      init = spec.baseModel!.hfCheckpoint!;
      pairs = spec.seedPairs!;
      const seedFile = await readPinned(pairs, 'the seed pairs');
      if (spec.labelNoiseRate > 0) {
        // Label noise is part of round 0's LEARN: deterministic from the run seed, so a re-executed stage flips the
        // same pairs and produces the same file.
        const noiseSeed = deriveSeed(spec.seed, 0, 'label-noise');
        const original = (await readObjects(seedFile)).map((l) => l.value);
        const noisy = flipLabels(original, spec.labelNoiseRate, noiseSeed);
        const info = await writeJsonl(path.join(dir, 'seed_pairs.noisy.jsonl'), noisy.pairs);
        const record = await writeFileAtomic(
          path.join(dir, 'label_noise.json'),
          JSON.stringify({ rate: spec.labelNoiseRate, seed: noiseSeed, num_pairs: original.length, flipped: noisy.flipped }) + '\n',
        );
        pairs = { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes };
        result.outputs.seed_pairs = file(pairs);
        result.outputs.label_noise = file({ uri: record.uri, sha256: record.sha256, sizeBytes: record.sizeBytes });
        result.metrics['data/flipped_pairs'] = noisy.flipped.length;
        result.metrics['data/seed_pairs'] = original.length;
      }
    } else {
      init = this.model(outputs, round - 1).hfCheckpoint!;
      pairs = ref(outputs.get(key(round, Stage.STAGE_JUDGE))!.pairs);
    }
    // Deterministic per (run, round, attempt): a coordinator that restarts mid-stage re-attaches to its job.
    const jobId = `${row.runId}-${row.nonce}-r${round}-learn-a${attempt}`;
    const jobSpec = preferenceJobSpec({ spec, round, init, pairs, outputDir: path.join(dir, `attempt-${attempt}`), seed });
    const job = await this.options.executors.learn.train(jobId, jobSpec, ctx);
    const model = job.outputs?.model;
    if (!model?.hfCheckpoint?.sha256 || !model.onnx?.sha256) {
      throw new StageFailedError(`trainer job ${jobId} succeeded without a model (hf_checkpoint and onnx with sha256)`);
    }
    result.outputs['model.hf_checkpoint'] = { ...model.hfCheckpoint, kind: 'dir' };
    result.outputs['model.onnx'] = { ...model.onnx, kind: 'dir' };
    if (job.outputs?.manifest?.uri) result.outputs['job.manifest'] = file(job.outputs.manifest);
    if (job.outputs?.metrics?.uri) result.outputs['job.metrics'] = file(job.outputs.metrics);
    for (const [name, output] of Object.entries(result.outputs)) {
      const problem = await verifyOutput(output);
      if (problem) throw new StageFailedError(`trainer job ${jobId}: output ${name}: ${problem}`);
    }
    for (const [name, value] of Object.entries(job.metrics)) result.metrics[trainerMetricName(name)] = value;
    result.jobId = jobId;
    return result;
  }

  private async evaluate(row: RunRow, round: number, dir: string, seed: number, outputs: Outputs, ctx: CallContext): Promise<StageResult> {
    const spec = row.spec;
    const evaluation = spec.evaluation!;
    const evaluated = await this.evaluator.evaluate(
      {
        round,
        policy: this.model(outputs, round),
        baseModel: spec.baseModel!,
        prompts: evaluation.prompts!,
        // Evaluation samples like the rounds unless it has its own sampling parameters.
        config: { ...evaluation, generation: evaluation.generation ?? spec.generation },
        baseline: round > 0 ? ref(outputs.get(key(0, Stage.STAGE_EVALUATE))!.baseline) : undefined,
        selfLabelledPairs: round > 0 ? ref(outputs.get(key(round, Stage.STAGE_JUDGE))!.pairs) : undefined,
        seeds: { policy: seed, baseline: deriveSeed(spec.seed, 0, 'eval-baseline'), bootstrap: deriveSeed(spec.seed, round, 'eval-bootstrap') },
        generatorShards: spec.sharding?.generatorShards ?? 0,
        judgeShards: spec.sharding?.judgeShards ?? 0,
        dir,
      },
      ctx,
    );
    return {
      outputs: Object.fromEntries(Object.entries(evaluated.outputs).map(([name, r]) => [name, file(r)])),
      metrics: evaluated.metrics,
      warnings: evaluated.warnings,
    };
  }
}

function modelOf(outputs: Record<string, StageOutput>): ModelRef {
  return { hfCheckpoint: ref(outputs['model.hf_checkpoint']), onnx: ref(outputs['model.onnx']) };
}
