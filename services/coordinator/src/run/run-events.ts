import { EventEmitter } from 'node:events';
import type { JobState, Progress, RoundMetrics, Run, Stage } from '@alignment/contracts';
import { isTerminal } from './store';

/** What WatchRun streams. */
export type RunEvent =
  | { kind: 'stage'; round: number; stage: Stage; state: JobState; message: string }
  | { kind: 'progress'; round: number; stage: Stage; progress: Progress }
  | { kind: 'metrics'; metrics: RoundMetrics }
  | { kind: 'ended'; run: Run }
  | { kind: 'shutdown' };

/** The events of every run, by run id, for WatchRun's subscribers; 'shutdown' ends every subscription. */
export class RunEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(runId: string, event: RunEvent): void {
    this.emitter.emit(runId, event);
  }

  shutdown(): void {
    this.emitter.emit('shutdown');
  }

  /**
   * Subscribes to a run's events. `initial` is the current state for a watcher that joins late: the metrics of the
   * rounds so far and the stage in flight — or, for a run that has ended, just the final run. `current` reads the
   * run after subscribing (so no event falls between); its error ends the subscription and is thrown.
   */
  watch(runId: string, listener: (event: RunEvent) => void, current: () => Run): { initial: RunEvent[]; unsubscribe: () => void } {
    const onEvent = (event: RunEvent) => listener(event);
    const onShutdown = () => listener({ kind: 'shutdown' });
    this.emitter.on(runId, onEvent);
    this.emitter.on('shutdown', onShutdown);
    const unsubscribe = () => {
      this.emitter.off(runId, onEvent);
      this.emitter.off('shutdown', onShutdown);
    };
    let run: Run;
    try {
      run = current();
    } catch (error) {
      unsubscribe();
      throw error;
    }
    // Terminal states are only written by an ending execution (whose 'ended' event may already be gone) or outside
    // one, and a resume sets RUNNING before it launches: a terminal run has nothing more to stream.
    if (isTerminal(run.state)) return { initial: [{ kind: 'ended', run }], unsubscribe };
    const initial: RunEvent[] = run.rounds.map((metrics) => ({ kind: 'metrics', metrics }));
    const stage = run.stages.find((s) => s.round === run.currentRound && s.stage === run.currentStage);
    if (stage) {
      initial.push({ kind: 'stage', round: stage.round, stage: stage.stage, state: stage.state, message: 'current stage' });
    }
    return { initial, unsubscribe };
  }
}
