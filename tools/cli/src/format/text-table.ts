/** Plain-text tables for a terminal: columns padded to their widest cell, two spaces apart, no trailing spaces. */

export type Align = 'left' | 'right';

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (align[c] === 'right' ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/**
 * A number for a table: an integer as it is (unless `asInteger` is false: a 0 among rates is 0.000), otherwise 3
 * decimals (1 from 1000 up; 3 significant digits below 0.001).
 */
export function formatNumber(x: number, asInteger = Number.isInteger(x)): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (asInteger && Number.isInteger(x)) return String(x);
  if (x === 0) return '0.000';
  const abs = Math.abs(x);
  if (abs >= 1000) return x.toFixed(1);
  if (abs < 0.001) return x.toPrecision(3);
  return x.toFixed(3);
}

/** A timestamp as UTC, to the second: 2025-01-31T12:00:00Z ('-' when there is none). */
export function formatTime(date: Date | undefined): string {
  return date ? date.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** A duration for people: 850 ms, 12.3 s, 4m 05s, 2h 03m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
