import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { JobState, type Run } from '@alignment/contracts';
import type { Logger } from '@alignment/service-kit';
import { StageAbortedError, StageFailedError } from './executors';
import type { RunEvent } from './run-events';
import type { RunResources } from './run-resources';
import type { RunRow, RunStore } from './store';

/** What endRun records with and tells (RunEngine's own). */
export interface RunEndContext {
  store: RunStore;
  log: Logger;
  resources: RunResources;
  emit(runId: string, event: RunEvent): void;
  getRun(runId: string): Run;
}

/** How an execution stopped: every stage done, or the error that stopped it (a shutdown's pause is not an end). */
export type RunOutcome = { succeeded: true } | { succeeded: false; error: unknown };

/**
 * Ends a run's execution. First what the run holds outside its directory (run-resources.ts): its policies are
 * unloaded from its inference engine and its objects in the model store measured, so a client that sees the run
 * ended sees them released and counted. An engine that cannot unload them changes nothing of the run's end: its
 * warning goes to watchers as an event of the run's last stage, before the end. Then the state: SUCCEEDED, CANCELLED
 * for a cancel, INTERRUPTED or FAILED for a stage that failed (with its message as the run's error); then the
 * 'ended' event.
 */
export async function endRun(ctx: RunEndContext, row: RunRow, span: Span, outcome: RunOutcome): Promise<void> {
  const runId = row.runId;
  const warning = await ctx.resources.releaseEngine(runId, row.spec, span);
  if (warning) {
    const now = ctx.store.findRun(runId)!;
    const last = ctx.store.getStage(runId, now.currentRound, now.currentStage);
    ctx.emit(runId, { kind: 'stage', round: now.currentRound, stage: now.currentStage, state: last?.state ?? now.state, message: warning });
  }
  await ctx.resources.measure(runId, span);
  if (outcome.succeeded) {
    ctx.store.setRunState(runId, JobState.JOB_STATE_SUCCEEDED, { allowedFrom: [JobState.JOB_STATE_RUNNING] });
    span.setStatus({ code: SpanStatusCode.OK });
    ctx.log.info({ run_id: runId }, 'run succeeded');
  } else if (outcome.error instanceof StageAbortedError) {
    ctx.store.setRunState(runId, JobState.JOB_STATE_CANCELLED, { error: 'cancelled by CancelRun' });
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'cancelled' });
    ctx.log.info({ run_id: runId }, 'run cancelled');
  } else {
    const interrupted = outcome.error instanceof StageFailedError && outcome.error.interrupted;
    const message = (outcome.error as Error).message;
    ctx.store.setRunState(runId, interrupted ? JobState.JOB_STATE_INTERRUPTED : JobState.JOB_STATE_FAILED, { error: message });
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    ctx.log.warn({ run_id: runId, error: message }, interrupted ? 'run interrupted' : 'run failed');
  }
  ctx.emit(runId, { kind: 'ended', run: ctx.getRun(runId) });
}
