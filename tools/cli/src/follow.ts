import * as grpc from '@grpc/grpc-js';
import type { Run } from '@alignment/contracts';
import { isServiceError, type Coordinator } from './coordinator';
import { isFinished } from './format/run-view';
import type { ProgressReporter } from './format/progress';

/**
 * Follows a run to its end through WatchRun (`watch`, `run --wait`), its events to a ProgressReporter. The stream
 * ends with the final Run. A coordinator that goes away (UNAVAILABLE: restarting, shutting down) is watched again,
 * up to RECONNECTS times, RECONNECT_DELAY_MS apart: the run goes on meanwhile, or resumes when it is back.
 */

const RECONNECTS = 20;
const RECONNECT_DELAY_MS = 3_000;

/** Ctrl-C while following: the run goes on, the command stops watching it. */
export class StoppedWatching extends Error {
  constructor() {
    super('stopped watching');
    this.name = 'StoppedWatching';
  }
}

/** One WatchRun call: the final Run, or undefined when the stream ended without one. */
function watchOnce(coordinator: Coordinator, runId: string, reporter: ProgressReporter, signal?: AbortSignal): Promise<Run | undefined> {
  return new Promise((resolve, reject) => {
    const stream = coordinator.watchRun(runId);
    let final: Run | undefined;
    const onAbort = () => {
      stream.cancel();
      reject(new StoppedWatching());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal?.removeEventListener('abort', onAbort);
    stream.on('data', (message) => {
      const event = message.event;
      if (event?.$case === 'stage') reporter.stage(event.value);
      else if (event?.$case === 'progress') reporter.progress(event.value);
      else if (event?.$case === 'roundMetrics') reporter.metrics(event.value);
      else if (event?.$case === 'run') final = event.value;
    });
    stream.on('error', (error) => {
      settle();
      if (signal?.aborted) return;
      // The stream was cancelled after the final Run came: that is its end.
      if (final && isServiceError(error) && error.code === grpc.status.CANCELLED) resolve(final);
      else reject(error);
    });
    stream.on('end', () => {
      settle();
      resolve(final);
    });
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new StoppedWatching());
      },
      { once: true },
    );
  });

/** Watches `runId` until it has ended; resolves with the final Run (rejects with a status error, or StoppedWatching). */
export async function followRun(
  coordinator: Coordinator,
  runId: string,
  reporter: ProgressReporter,
  note: (message: string) => void,
  signal?: AbortSignal,
): Promise<Run> {
  for (let attempt = 0; ; attempt++) {
    try {
      const final = await watchOnce(coordinator, runId, reporter, signal);
      if (final) return final;
      // Ended without the final Run: ask for it; a run still going is watched again.
      const run = await coordinator.getRun(runId);
      if (isFinished(run.state)) return run;
    } catch (error) {
      if (!(isServiceError(error) && error.code === grpc.status.UNAVAILABLE) || attempt >= RECONNECTS) throw error;
      reporter.end();
      note(`the coordinator is unavailable (${error.details}); watching again in ${RECONNECT_DELAY_MS / 1000} s`);
    }
    await sleep(RECONNECT_DELAY_MS, signal);
  }
}
