/**
 * A dependency-free terminal progress bar for the demo:
 *
 *   [#########...........]  45%  spa s1 r1 generate  12/40  (detail)
 *
 * On a TTY the bar is one line redrawn in place (carriage return + clear line), and log() lines scroll above it.
 * On anything else (a CI log, a file, a pipe) it prints plain lines instead, per label at most at every 10% step
 * or every 5 seconds, plus the first and the final update, so a log stays short.
 */

const BAR_WIDTH = 20;
const PLAIN_MIN_INTERVAL_MS = 5000;
const CLEAR_LINE = '\r\x1b[2K';

/** The parts of a stream the renderer uses (process.stdout/process.stderr satisfy it). */
export type ProgressStream = Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean; columns?: number };

interface PlainState {
  decile: number;
  at: number;
  finished: boolean;
}

export class Progress {
  private readonly tty: boolean;
  /** The bar currently drawn on a TTY, '' when none is. */
  private drawn = '';
  private readonly plain = new Map<string, PlainState>();

  constructor(
    private readonly stream: NodeJS.WriteStream | ProgressStream,
    private readonly now: () => number = Date.now,
  ) {
    this.tty = stream.isTTY === true;
  }

  /** Shows `done` of `total` steps of the task `label`; `detail` is appended in parentheses. */
  update(label: string, done: number, total: number, detail?: string): void {
    const line = formatBar(label, done, total, detail);
    if (this.tty) {
      this.draw(line);
      return;
    }
    const fraction = fractionOf(done, total);
    const decile = Math.floor(fraction * 10 + 1e-9);
    const finished = fraction >= 1;
    const at = this.now();
    const last = this.plain.get(label);
    const due =
      last === undefined ||
      (finished && !last.finished) ||
      (!finished && decile > last.decile) ||
      (at - last.at >= PLAIN_MIN_INTERVAL_MS && !(finished && last.finished));
    if (!due) return;
    this.plain.set(label, { decile, at, finished });
    this.stream.write(`${line}\n`);
  }

  /** Prints a line; on a TTY above the bar, which is redrawn under it. */
  log(line: string): void {
    if (!this.tty) {
      this.stream.write(`${line}\n`);
      return;
    }
    const bar = this.drawn;
    if (bar) this.stream.write(CLEAR_LINE);
    this.stream.write(`${line}\n`);
    this.drawn = '';
    if (bar) this.draw(bar);
  }

  /** Ends the current bar: on a TTY its last state stays on screen and the cursor moves to the next line. Idempotent;
   * update() may be called again afterwards to start a new bar. */
  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = '';
    this.plain.clear();
  }

  private draw(line: string): void {
    // A line wider than the terminal wraps, and \r then only returns to the start of its last row; keep it on one.
    const columns = this.stream.columns;
    const fitted = columns && columns > 1 && line.length > columns - 1 ? `${line.slice(0, columns - 2)}…` : line;
    this.stream.write(`${CLEAR_LINE}${fitted}`);
    this.drawn = line;
  }
}

/** One bar line, without a line ending: `[####......]  40%  label  4/10  (detail)`. */
export function formatBar(label: string, done: number, total: number, detail?: string): string {
  const fraction = fractionOf(done, total);
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const counts = total > 0 ? `  ${done}/${total}` : '';
  return `${bar} ${percent}  ${label}${counts}${detail ? `  (${detail})` : ''}`;
}

function fractionOf(done: number, total: number): number {
  if (!(total > 0)) return done > 0 ? 1 : 0;
  const f = done / total;
  return Number.isFinite(f) ? Math.min(1, Math.max(0, f)) : 0;
}
