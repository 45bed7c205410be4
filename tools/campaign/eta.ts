/**
 * The campaign's progress line: cells done of the total (skipped ones included), and an ETA from the cells measured
 * in this invocation: wall time since the first cell started (base models and seed pairs included) per cell run.
 */

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class CampaignEta {
  private started?: number;
  private ran = 0;

  constructor(
    readonly total: number,
    private readonly skipped: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Call when the first cell to run starts (setup before it, such as starting the stack, is not counted). */
  start(): void {
    this.started ??= this.now();
  }

  cellDone(): void {
    this.ran++;
  }

  get done(): number {
    return this.skipped + this.ran;
  }

  /** Seconds left, or undefined before any cell of this invocation has finished. */
  remainingSeconds(): number | undefined {
    if (this.started === undefined || this.ran === 0) return undefined;
    const perCell = (this.now() - this.started) / 1000 / this.ran;
    return perCell * (this.total - this.done);
  }

  /** `cells 5/12 done (3 skipped, already finished); ETA 4m30s (1m30s per cell)` */
  line(): string {
    const left = this.remainingSeconds();
    const skipped = this.skipped > 0 ? ` (${this.skipped} skipped, already finished)` : '';
    const eta = left === undefined ? 'ETA after the first cell' : `ETA ${formatDuration(left)} (${formatDuration((this.now() - this.started!) / 1000 / this.ran)} per cell)`;
    return `cells ${this.done}/${this.total} done${skipped}; ${eta}`;
  }
}
