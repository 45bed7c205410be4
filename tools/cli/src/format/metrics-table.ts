import type { RoundMetrics } from '@alignment/contracts';
import { formatNumber, renderTable } from './text-table';

/**
 * The per-round metrics table of `watch`, `get` and `run --wait`: one row per round, one column per metric. By
 * default the headline metrics (DEFAULT_METRICS) that some round reports; `--metrics` names others, or `all`. A
 * metric with a 95% interval (`<key>_ci_low`, `<key>_ci_high`, as eval/win_rate has) shows it beside the value, in
 * one column; a round without the metric shows '-'.
 */

/** The default columns, in order, each shown when some round has it. */
export const DEFAULT_METRICS: readonly string[] = [
  'eval/win_rate',
  'eval/lc_win_rate',
  'judge/self_label_accuracy',
  'eval/kl',
  'eval/gold_reward',
  'eval/mean_length',
  'judge/num_pairs',
  'train/loss',
];

const CI_LOW = '_ci_low';
const CI_HIGH = '_ci_high';

/** The columns for `selection`: undefined = the defaults present, ['all'] = every key present, else as given. */
export function metricColumns(rounds: readonly RoundMetrics[], selection?: readonly string[]): string[] {
  const present = new Set(rounds.flatMap((r) => Object.keys(r.metrics)));
  if (selection === undefined) return DEFAULT_METRICS.filter((key) => present.has(key));
  if (selection.length === 1 && selection[0] === 'all') {
    // An interval's bounds go with their metric's column.
    const bound = (key: string) => (key.endsWith(CI_LOW) || key.endsWith(CI_HIGH)) && present.has(key.replace(/_ci_(low|high)$/, ''));
    return [...present].filter((key) => !bound(key)).sort();
  }
  return [...selection];
}

/** A metric's value with its interval, when it has one; `integers`: every value of the column is an integer. */
export function metricCell(metrics: Record<string, number>, key: string, integers = false): string {
  const value = metrics[key];
  if (value === undefined) return '-';
  const low = metrics[key + CI_LOW];
  const high = metrics[key + CI_HIGH];
  const format = (x: number) => formatNumber(x, integers);
  return low !== undefined && high !== undefined ? `${format(value)} [${format(low)}, ${format(high)}]` : format(value);
}

/** Whether every value of a column (intervals included) is an integer: counts print as counts, rates as rates. */
function integerColumn(rounds: readonly RoundMetrics[], key: string): boolean {
  return rounds.every((r) => [key, key + CI_LOW, key + CI_HIGH].every((k) => r.metrics[k] === undefined || Number.isInteger(r.metrics[k])));
}

function header(rounds: readonly RoundMetrics[], key: string): string {
  const withInterval = rounds.some((r) => r.metrics[key + CI_LOW] !== undefined && r.metrics[key + CI_HIGH] !== undefined);
  return withInterval ? `${key} [95% CI]` : key;
}

/** The table ('' when no round has metrics yet). */
export function metricsTable(rounds: readonly RoundMetrics[], selection?: readonly string[]): string {
  if (rounds.length === 0) return '';
  const sorted = [...rounds].sort((a, b) => a.round - b.round);
  const keys = metricColumns(sorted, selection);
  return renderTable(
    ['round', ...keys.map((key) => header(sorted, key))],
    sorted.map((r) => [String(r.round), ...keys.map((key) => metricCell(r.metrics, key, integerColumn(sorted, key)))]),
    ['right', ...keys.map(() => 'right' as const)],
  );
}
