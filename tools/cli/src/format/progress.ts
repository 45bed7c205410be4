import { JobState, type Progress, type RoundMetrics, type StageEvent } from '@alignment/contracts';
import { metricCell } from './metrics-table';
import { formatDuration } from './text-table';
import { stageName, stateName } from './run-view';

/**
 * What `watch` shows on stderr while a run goes on, from WatchRun's events. On a terminal: a live line (the stage in
 * flight and its progress) rewritten in place, and a line that stays for every stage that ends and every round's
 * metrics. Elsewhere (a pipe, a log file): the same as plain lines, stamped with the time since the watch started,
 * the progress at most every PLAIN_PROGRESS_EVERY_MS per stage.
 */

export interface Terminal {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

export const PLAIN_PROGRESS_EVERY_MS = 10_000;
/** The metrics a round's line shows, when it has them. */
const HEADLINE = ['eval/win_rate', 'eval/lc_win_rate', 'judge/self_label_accuracy', 'eval/kl'];

/** `40/64 steps, 35 tok/s, eta 12.0 s` */
export function progressText(p: Progress): string {
  const parts = [p.total > 0 ? `${p.done}/${p.total} ${p.unit}` : `${p.done} ${p.unit}`];
  if (p.tokensPerSecond > 0) parts.push(`${p.tokensPerSecond.toFixed(0)} tok/s`);
  if (p.etaSeconds > 0) parts.push(`eta ${formatDuration(p.etaSeconds * 1000)}`);
  return parts.join(', ').trim();
}

/**
 * `round 1: eval/win_rate 0.625 [0.500, 0.750], judge/self_label_accuracy 0.812`, or undefined when the round has
 * none of the headline metrics yet (the coordinator sends a round's metrics after each of its stages).
 */
export function roundMetricsText(m: RoundMetrics): string | undefined {
  const shown = HEADLINE.filter((key) => m.metrics[key] !== undefined).map((key) => `${key} ${metricCell(m.metrics, key)}`);
  return shown.length > 0 ? `round ${m.round}: ${shown.join(', ')}` : undefined;
}

export class ProgressReporter {
  private readonly started: number;
  /** The stage in flight: its label, when it started, and the last progress (text, when printed plain). */
  private current?: { key: string; label: string; since: number; progress?: string; printedAt: number };
  private liveShown = false;

  constructor(
    private readonly out: Terminal,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  stage(event: StageEvent): void {
    const key = `${event.round} ${event.stage}`;
    const label = `round ${event.round} ${stageName(event.stage)}`;
    const message = event.message ? `: ${event.message}` : '';
    if (event.state === JobState.JOB_STATE_RUNNING) {
      this.current = { key, label, since: this.now(), printedAt: -Infinity };
      if (this.out.isTTY) this.drawLive();
      else this.line(`${label} running${message}`);
      return;
    }
    const took = this.current?.key === key ? ` (${formatDuration(this.now() - this.current.since)})` : '';
    if (this.current?.key === key) this.current = undefined;
    this.line(`${label} ${stateName(event.state).toLowerCase()}${took}${message}`);
  }

  progress(progress: Progress): void {
    if (!this.current) return;
    this.current.progress = progressText(progress);
    if (this.out.isTTY) return this.drawLive();
    if (this.now() - this.current.printedAt < PLAIN_PROGRESS_EVERY_MS) return;
    this.current.printedAt = this.now();
    this.line(`${this.current.label} ${this.current.progress}`);
  }

  metrics(metrics: RoundMetrics): void {
    const text = roundMetricsText(metrics);
    if (text) this.line(text);
  }

  /** Redraws the live line (its elapsed time), on a terminal: every second while a stage runs. */
  tick(): void {
    if (this.out.isTTY && this.current) this.drawLive();
  }

  /** Clears the live line (before the command prints its result). */
  end(): void {
    if (this.liveShown) this.out.write('\r\x1b[2K');
    this.liveShown = false;
  }

  private stamp(): string {
    const s = Math.floor((this.now() - this.started) / 1000);
    return `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}]`;
  }

  /** A line that stays; on a terminal the live line is drawn again below it. */
  private line(text: string): void {
    this.end();
    this.out.write(`${this.stamp()} ${text}\n`);
    if (this.out.isTTY && this.current) this.drawLive();
  }

  private drawLive(): void {
    const c = this.current!;
    const ms = this.now() - c.since;
    const elapsed = ms < 60_000 ? `${Math.floor(ms / 1000)}s` : formatDuration(ms);
    let text = `${this.stamp()} ${c.label} running ${elapsed}${c.progress ? `: ${c.progress}` : ''}`;
    const width = (this.out.columns || 100) - 1; // 0 or unknown (a pseudo-terminal without a size): 100
    if (text.length > width) text = `${text.slice(0, width - 1)}…`;
    this.out.write(`\r\x1b[2K${text}`);
    this.liveShown = true;
  }
}
