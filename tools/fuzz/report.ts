/** Counts per service, the failures, the stderr table and the one-line JSON summary. */
import { SERVICE_NAMES, type FuzzCase, type ServiceName } from './model';

export type FailureKind = 'crash' | 'hang' | 'wrong_code';

export interface Failure {
  kind: FailureKind;
  /** The service that failed (a crash) or was called (a hang, a wrong code). */
  service: ServiceName;
  rpc: string;
  case: string;
  index: number;
  code: string;
  details: string;
}

export interface ServiceCounts {
  cases: number;
  crashes: number;
  hangs: number;
  wrong_codes: number;
  /** Accepted (OK, or a Watch stream cancelled after its first message) / refused: how deep the cases got. */
  ok: number;
  refused: number;
}

const emptyCounts = (): ServiceCounts => ({ cases: 0, crashes: 0, hangs: 0, wrong_codes: 0, ok: 0, refused: 0 });

export class Tally {
  readonly perService: Record<ServiceName, ServiceCounts> = Object.fromEntries(SERVICE_NAMES.map((s) => [s, emptyCounts()])) as Record<ServiceName, ServiceCounts>;
  readonly failures: Failure[] = [];
  readonly codes = new Map<string, number>();

  /** `accepted`: answered OK, or a stream the suite cancelled after its first message. */
  countCase(c: FuzzCase, code: string, accepted: boolean): void {
    this.perService[c.rpc.service].cases++;
    if (accepted) this.perService[c.rpc.service].ok++;
    else this.perService[c.rpc.service].refused++;
    const key = `${c.rpc.service} ${c.rpc.rpc} ${code}`;
    this.codes.set(key, (this.codes.get(key) ?? 0) + 1);
  }

  fail(failure: Failure): void {
    this.failures.push(failure);
    const counts = this.perService[failure.service];
    if (failure.kind === 'crash') counts.crashes++;
    else if (failure.kind === 'hang') counts.hangs++;
    else counts.wrong_codes++;
  }

  total(key: keyof ServiceCounts): number {
    return SERVICE_NAMES.reduce((s, n) => s + this.perService[n][key], 0);
  }

  /** The last stdout line: exactly one JSON object, the required keys first. */
  summaryLine(extra: Record<string, unknown> = {}): string {
    return JSON.stringify({
      check: 'fuzz',
      cases: this.total('cases'),
      crashes: this.total('crashes'),
      hangs: this.total('hangs'),
      wrong_codes: this.total('wrong_codes'),
      per_service: this.perService,
      ...extra,
    });
  }

  table(): string {
    const header = ['service', 'cases', 'ok', 'refused', 'crashes', 'hangs', 'wrong codes'];
    const rows = SERVICE_NAMES.map((s) => {
      const c = this.perService[s];
      return [s, c.cases, c.ok, c.refused, c.crashes, c.hangs, c.wrong_codes].map(String);
    });
    rows.push(['total', ...(['cases', 'ok', 'refused', 'crashes', 'hangs', 'wrong_codes'] as const).map((k) => String(this.total(k)))]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
  }

  failureList(): string {
    if (this.failures.length === 0) return 'no failures';
    return this.failures
      .map((f) => `${f.kind.toUpperCase()} #${f.index} ${f.service} ${f.rpc} ${f.case}: ${f.code}: ${f.details.replace(/\s+/g, ' ').slice(0, 600)}`)
      .join('\n');
  }

  /** Codes seen per service and RPC, e.g. "judge JudgePairs INVALID_ARGUMENT 12". */
  codeList(): string {
    return [...this.codes].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join('\n');
  }
}
