import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { ROOT_CONTEXT, TraceFlags, trace, type Context, type Span } from '@opentelemetry/api';
import { JobState, RunSpec, Stage, type Run } from '@alignment/contracts';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@alignment/errors';
import { tracer, withSpan, type Logger } from '@alignment/service-kit';
import { DEFAULT_AUTO_RESUME, backoffBefore, isResumable, type AutoResumePolicy } from './auto-resume';
import { PairwiseEvaluator } from './evaluate';
import { StageAbortedError, StageFailedError, ServiceUnavailableError, abortReason, sleep, type CallContext, type Executors, type StageExecutors } from './executors';
import { planStages, type PlannedStage } from './plan';
import { checkDeletable, diskBytes, endsRound, pinnedRounds, pruneCheckpoints, removeRunDir } from './retention';
import { endRun, type RunEndContext } from './run-end';
import { RunConflictError, ShuttingDownError } from './run-errors';
import { RunEvents, type RunEvent } from './run-events';
import { RunResources } from './run-resources';
import { deriveSeed } from './seeds';
import { checkRunId, validateSpec } from './run-spec';
import { prepareStageDir, removeStageWork } from './stage-dir';
import { stageName, verifyStage, writeStageManifest } from './stage-manifest';
import { StageOutputs, artifactRef, inputIdentities, modelOf, stageDefinition, type StageResult } from './stages';
import { appendRoundScalars } from './tensorboard';
import { type RunRow, type RunStore } from './store';

export interface EngineOptions {
  store: RunStore;
  /** Root of the artifacts: $DATA_DIR/runs/<run_id>/round-<t>/<stage>/. Must be absolute. */
  dataDir: string;
  /** MODEL_STORE_URI (model-store.ts): where LEARN stages publish their models; unset = under their stage directory. */
  modelStoreUri?: string;
  executors: Executors;
  logger: Logger;
  autoResume?: AutoResumePolicy; // automatic resumes of INTERRUPTED / UNAVAILABLE failures; default DEFAULT_AUTO_RESUME
  /**
   * Called when a run's execution crashed on something other than a stage failure (the database cannot be written):
   * main.ts turns health NOT_SERVING and exits, so the orchestrator restarts the coordinator. Default: logged only.
   */
  onFatal?: (error: unknown) => void;
}

const RESUMABLE: readonly JobState[] = [JobState.JOB_STATE_FAILED, JobState.JOB_STATE_INTERRUPTED, JobState.JOB_STATE_CANCELLED];

interface Execution {
  controller: AbortController;
  done: Promise<void>;
}

/** An error of SQLite itself (better-sqlite3 codes are SQLITE_*): the run's state can no longer be recorded. */
const isDatabaseError = (error: unknown) => String((error as { code?: unknown } | null)?.code ?? '').startsWith('SQLITE_');

const label = (round: number, stage: Stage) => `round ${round} ${stageName(stage)}`;

/**
 * Runs as a durable state machine (docs/architecture.md "Data flow of one round"): the stages of planStages, each keyed
 * by (run, round, stage), each ending with its outputs in place and a verified stage.json (stage-manifest.ts), each
 * recorded in SQLite. A run resumes — after kill -9, a failure, or a cancel — at the first stage without a
 * complete, verified output; a stage that was in flight is executed again (its partial outputs were never renamed
 * into place), and a trainer job it had started is re-attached by its deterministic job id.
 */
export class RunEngine {
  private readonly executions = new Map<string, Execution>();
  private readonly events = new RunEvents();
  private readonly executors: StageExecutors;
  private readonly resources: RunResources;
  private readonly ending: RunEndContext;
  private stopping = false;
  private ticker?: NodeJS.Timeout;

  constructor(private readonly options: EngineOptions) {
    if (!path.isAbsolute(options.dataDir)) throw new Error(`dataDir must be absolute, got ${options.dataDir}`);
    const { generate, judge, learn, goldJudge, roundJudge, engine } = options.executors;
    this.executors = { generate, judge, learn, roundJudge, engine, evaluate: options.executors.evaluate ?? new PairwiseEvaluator(generate, judge, goldJudge) };
    this.resources = new RunResources({ store: options.store, modelStoreUri: options.modelStoreUri, engine, logger: options.logger });
    this.ending = { store: options.store, log: options.logger, resources: this.resources, emit: (id, e) => this.emit(id, e), getRun: (id) => this.getRun(id) };
  }

  private get store(): RunStore {
    return this.options.store;
  }

  private get log(): Logger {
    return this.options.logger;
  }

  runDir(runId: string): string {
    return path.join(this.options.dataDir, 'runs', runId);
  }

  stageDir(runId: string, round: number, stage: Stage): string {
    return path.join(this.runDir(runId), `round-${round}`, stageName(stage).toLowerCase());
  }

  // ------------------------------------------------------------------------------------------------------ API

  /**
   * Starts a run. With a run_id that exists: the same spec returns that run — resuming it first when it FAILED, was
   * INTERRUPTED or CANCELLED — and a different spec is a RunConflictError. A new run's spec is validated first
   * (InvalidArgumentError naming the field).
   */
  async startRun(request: { runId?: string; spec: RunSpec; owner?: string }): Promise<Run> {
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
    this.store.createRun({ runId, spec: validated.spec, requestSpec, traceId, rootSpanId: spanId, nonce: randomBytes(4).toString('hex'), owner: request.owner ?? '' });
    this.log.info({ run_id: runId, trace_id: traceId, configuration: validated.plan.name, rounds: validated.rounds }, 'run started');
    this.launch(runId, span);
    return this.getRun(runId);
  }

  private restart(row: RunRow, requestSpec: Buffer): Run {
    if (!row.requestSpec.equals(requestSpec)) throw new RunConflictError(row.runId);
    if (RESUMABLE.includes(row.state) && !this.executions.has(row.runId)) {
      if (this.store.setRunState(row.runId, JobState.JOB_STATE_RUNNING, { allowedFrom: RESUMABLE })) {
        this.store.setAutoResumes(row.runId, 0); // a person resumed it: a fresh budget
        this.log.info({ run_id: row.runId, from: JobState[row.state] }, 'run resumed by StartRun');
        this.launch(row.runId);
      }
    }
    return this.getRun(row.runId);
  }

  /**
   * Resumes every run that is RUNNING without an execution: at start, those the last coordinator left (stopped or
   * killed); on each tick (startTicking), a run whose execution ended without recording an end. Returns their ids.
   */
  resumeAll(): string[] {
    if (this.stopping) return [];
    const ids = this.store.runIdsInState([JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_PENDING]).filter((id) => !this.executions.has(id));
    for (const runId of ids) {
      this.log.info({ run_id: runId }, 'resuming run');
      this.launch(runId);
    }
    return ids;
  }

  getRun(runId: string): Run {
    const row = this.store.findRun(runId);
    if (!row) throw new NotFoundError(`run_id: no run '${runId}'`);
    return { ...this.store.toRun(row), diskBytes: diskBytes(this.runDir(runId)) };
  }

  /** Deletes a run that is not executing: its policies its engine still serves (best effort), its directory, then its records (DeleteRun). Returns the bytes freed. */
  async deleteRun(runId: string): Promise<number> {
    const row = this.store.findRun(runId);
    if (!row) throw new NotFoundError(`run_id: no run '${runId}'`);
    checkDeletable(runId, row.state, this.executions.has(runId));
    await this.resources.releaseEngine(runId, row.spec);
    const freed = await removeRunDir(this.runDir(runId));
    this.store.deleteRun(runId);
    return freed;
  }

  /** Runs in creation order after the page token (the last run's sequence number); only `owner`'s when given. */
  listRuns(pageSize: number, pageToken: string, owner?: string): { runs: Run[]; nextPageToken: string } {
    // Decimal digits only (Number() would also read '1e22' and '0x10'), within a safe integer.
    const after = pageToken === '' ? 0 : /^[0-9]{1,15}$/.test(pageToken) ? Number(pageToken) : NaN;
    if (!Number.isInteger(after)) throw new InvalidArgumentError('page_token', 'not a token from a previous ListRuns response');
    const rows = this.store.listRuns(after, pageSize + 1, owner);
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
    return this.events.watch(runId, listener, () => this.getRun(runId));
  }

  /** Stops executing (runs stay RUNNING in the database and resume at the next start) and ends every watch. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticker);
    const executions = [...this.executions.values()];
    for (const execution of executions) execution.controller.abort('shutdown');
    await Promise.all(executions.map((e) => e.done));
    this.events.shutdown();
  }

  /** Resolves when the run's current execution (if any) has settled. For tests and shutdown. */
  async settled(runId: string): Promise<void> {
    await this.executions.get(runId)?.done;
  }

  // -------------------------------------------------------------------------------------------------- execution

  private emit(runId: string, event: RunEvent): void {
    this.events.emit(runId, event);
  }

  /** Every `intervalMs`, resumes the runs left RUNNING without an execution (resumeAll); stopped by stop(). */
  startTicking(intervalMs: number): void {
    this.ticker ??= setInterval(() => {
      try {
        this.resumeAll();
      } catch (error) {
        this.fatal(error);
      }
    }, intervalMs).unref();
  }

  private fatal(error: unknown): void {
    this.log.error({ err: error }, 'coordinator cannot go on');
    this.options.onFatal?.(error);
  }

  private launch(runId: string, rootSpan?: Span): void {
    const controller = new AbortController();
    const done = this.execute(runId, controller.signal, rootSpan)
      .catch((error) => {
        this.log.error({ err: error, run_id: runId }, 'run execution crashed');
        this.fatal(error);
      })
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
    const policy = this.options.autoResume ?? DEFAULT_AUTO_RESUME;
    try {
      for (;;) {
        try {
          const outputs = new StageOutputs();
          const plan = planStages(row.spec);
          for (const [index, planned] of plan.entries()) {
            if (signal.aborted) throw new StageAbortedError(abortReason(signal));
            await this.runStage(row, planned, outputs, signal, runCtx);
            if (!endsRound(plan, index)) continue;
            await pruneCheckpoints(this.runDir(runId), row.spec.keepLastCheckpoints, planned.round, pinnedRounds(row.spec));
            await this.resources.measure(runId, span);
          }
          break;
        } catch (error) {
          const now = this.store.findRun(runId)!;
          const used = now.autoResumes;
          if (!isResumable(error) || used >= policy.budget) throw error;
          const delayMs = backoffBefore(used + 1, policy);
          this.store.setAutoResumes(runId, used + 1);
          const message = `${(error as Error).message}; resuming by itself in ${Math.round(delayMs / 1000)} s (automatic resume ${used + 1} of ${policy.budget})`;
          this.log.warn({ run_id: runId, auto_resume: used + 1, budget: policy.budget, delay_ms: delayMs, error: (error as Error).message }, 'run resumes by itself');
          span.addEvent('coordinator.run.auto_resume', { 'auto_resume.count': used + 1, 'auto_resume.delay_ms': delayMs });
          this.emit(runId, { kind: 'stage', round: now.currentRound, stage: now.currentStage, state: JobState.JOB_STATE_FAILED, message });
          await sleep(delayMs, signal);
        }
      }
      await endRun(this.ending, row, span, { succeeded: true });
    } catch (error) {
      // The database itself failed: nothing can be recorded; launch() hands it to onFatal.
      if (isDatabaseError(error)) throw error;
      if (error instanceof StageAbortedError && error.reason === 'shutdown') {
        span.setAttribute('run.stopped_by_shutdown', true);
        this.log.info({ run_id: runId }, 'run paused by shutdown; it resumes at the next start');
        return;
      }
      await endRun(this.ending, row, span, { succeeded: false, error });
    } finally {
      span.end();
    }
  }

  /**
   * One stage: skipped when its stage.json verifies for the inputs it would consume now, else executed with those
   * same inputs, its outputs and manifest recorded (the stage's own code is stages/<stage>.ts).
   */
  private async runStage(row: RunRow, { round, stage }: PlannedStage, outputs: StageOutputs, signal: AbortSignal, runCtx: Context): Promise<void> {
    const runId = row.runId;
    const dir = this.stageDir(runId, round, stage);
    const identity = { runId, round, stage };
    const definition = stageDefinition(stage);
    const stageInputs = definition.inputs(row.spec, round, outputs);
    const inputs = inputIdentities(stageInputs);
    const seed = deriveSeed(row.spec.seed, round, stageName(stage));
    const recorded = this.store.getStage(runId, round, stage);
    const verification = await verifyStage(dir, identity, inputs, recorded?.state === JobState.JOB_STATE_SUCCEEDED ? recorded.manifestSha256 : undefined);
    if (verification.ok) {
      outputs.set(round, stage, verification.outputs);
      if (recorded?.state !== JobState.JOB_STATE_SUCCEEDED) {
        // The coordinator died after the stage's manifest was written but before the database heard of it.
        this.store.finishStage(runId, round, stage, {
          state: JobState.JOB_STATE_SUCCEEDED,
          outputs: Object.values(verification.outputs).map(artifactRef),
          manifestSha256: verification.manifestSha256,
          metrics: verification.metrics,
        });
        await appendRoundScalars(path.join(this.options.dataDir, 'runs', runId), round, verification.metrics, this.log);
      }
      if (stage === Stage.STAGE_LEARN) this.store.setLatestModel(runId, modelOf(verification.outputs));
      await removeStageWork(dir);
      this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_SUCCEEDED, message: 'complete and verified; not executed again' });
      return;
    }
    if (recorded) this.log.info({ run_id: runId, round, stage: stageName(stage), reason: verification.reason }, 'executing stage again');

    const attempt = this.store.startStage(runId, round, stage);
    await prepareStageDir(dir, attempt);
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
        () => definition.execute(stageInputs, { runId, nonce: row.nonce, spec: row.spec, round, dir, seed, attempt, modelStore: this.options.modelStoreUri, executors: this.executors, call: ctx }),
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
      const unavailable = error instanceof ServiceUnavailableError || (error instanceof StageFailedError && error.serviceUnavailable);
      const message = `${label(round, stage)}: ${(error as Error).message}`;
      this.store.finishStage(runId, round, stage, { state: JobState.JOB_STATE_FAILED, error: message });
      this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_FAILED, message });
      if (!(error instanceof StageFailedError || error instanceof ServiceUnavailableError)) {
        this.log.error({ err: error, run_id: runId, round, stage: stageName(stage) }, 'stage failed unexpectedly');
      }
      throw new StageFailedError(message, interrupted, unavailable);
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
      outputs: Object.values(result.outputs).map(artifactRef),
      manifestSha256,
      metrics: result.metrics,
    });
    outputs.set(round, stage, result.outputs);
    if (stage === Stage.STAGE_LEARN) {
      this.store.setLatestModel(runId, modelOf(result.outputs));
      await this.resources.measure(runId); // before the stage's end is told: a watcher reads the new model's bytes
    }
    await removeStageWork(dir);
    for (const warning of result.warnings ?? []) this.log.warn({ run_id: runId, round, stage: stageName(stage) }, warning);
    this.emit(runId, { kind: 'stage', round, stage, state: JobState.JOB_STATE_SUCCEEDED, message: (result.warnings ?? []).join('; ') });
    const metrics = this.store.metricsOf(runId).find((m) => m.round === round);
    if (metrics && Object.keys(result.metrics).length > 0) this.emit(runId, { kind: 'metrics', metrics });
    await appendRoundScalars(path.join(this.options.dataDir, 'runs', runId), round, result.metrics, this.log);
  }
}
