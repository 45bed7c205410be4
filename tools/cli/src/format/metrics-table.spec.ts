import type { RoundMetrics } from '@alignment/contracts';
import { metricColumns, metricsTable } from './metrics-table';
import { formatDuration, formatNumber, formatTime, renderTable } from './text-table';

const rounds: RoundMetrics[] = [
  {
    round: 1,
    metrics: {
      'eval/win_rate': 0.625,
      'eval/win_rate_ci_low': 0.5,
      'eval/win_rate_ci_high': 0.75,
      'eval/lc_win_rate': 0.6012,
      'judge/self_label_accuracy': 0.8125,
      'eval/comparisons': 16,
    },
  },
  { round: 0, metrics: { 'eval/win_rate': 0.5, 'eval/win_rate_ci_low': 0.3125, 'eval/win_rate_ci_high': 0.6875, 'eval/lc_win_rate': 0.5, 'eval/comparisons': 16 } },
];

describe('the metrics table', () => {
  it('has a row per round, in order, and the headline metrics some round has: the win rate with its interval', () => {
    expect(metricsTable(rounds)).toBe(
      [
        'round  eval/win_rate [95% CI]  eval/lc_win_rate  judge/self_label_accuracy',
        '    0    0.500 [0.313, 0.688]             0.500                          -',
        '    1    0.625 [0.500, 0.750]             0.601                      0.813',
      ].join('\n'),
    );
  });

  it('shows eval/kl and the other default columns when the rounds report them', () => {
    const withKl = rounds.map((r) => ({ ...r, metrics: { ...r.metrics, 'eval/kl': r.round * 0.25, 'train/loss': 0.69 } }));
    expect(metricColumns(withKl)).toEqual(['eval/win_rate', 'eval/lc_win_rate', 'judge/self_label_accuracy', 'eval/kl', 'train/loss']);
    expect(metricsTable(withKl).split('\n')[2]).toMatch(/0\.250\s+0\.690$/);
  });

  it('takes the columns given (a missing one is "-"), or all of them, intervals beside their metric', () => {
    expect(metricsTable(rounds, ['eval/comparisons', 'judge/num_pairs'])).toBe(
      ['round  eval/comparisons  judge/num_pairs', '    0                16                -', '    1                16                -'].join('\n'),
    );
    expect(metricColumns(rounds, ['all'])).toEqual(['eval/comparisons', 'eval/lc_win_rate', 'eval/win_rate', 'judge/self_label_accuracy']);
  });

  it('prints a column of counts as integers, and a 0 among rates as a rate', () => {
    const zero: RoundMetrics[] = [
      { round: 1, metrics: { 'eval/win_rate': 0.094, 'eval/win_rate_ci_low': 0, 'eval/win_rate_ci_high': 0.219, 'judge/num_pairs': 12 } },
      { round: 2, metrics: { 'eval/win_rate': 0, 'eval/win_rate_ci_low': 0, 'eval/win_rate_ci_high': 0, 'judge/num_pairs': 0 } },
    ];
    expect(metricsTable(zero).split('\n').slice(1)).toEqual(['    1    0.094 [0.000, 0.219]               12', '    2    0.000 [0.000, 0.000]                0']);
  });

  it('is empty before any round has metrics', () => {
    expect(metricsTable([])).toBe('');
    expect(metricsTable([{ round: 0, metrics: {} }])).toBe('round\n    0');
  });
});

describe('table cells', () => {
  it('numbers: integers as they are, 3 decimals, fewer digits for large values, significant digits for tiny ones', () => {
    expect([16, 0.625, -37.26391, 1234.567, 0.0000123, NaN, Infinity].map((x) => formatNumber(x))).toEqual(['16', '0.625', '-37.264', '1234.6', '0.0000123', 'NaN', 'inf']);
    expect([formatNumber(0, false), formatNumber(1, false), formatNumber(0)]).toEqual(['0.000', '1.000', '0']);
  });

  it('times in UTC to the second, durations for people', () => {
    expect(formatTime(new Date('2025-01-31T12:00:00.250Z'))).toBe('2025-01-31T12:00:00Z');
    expect(formatTime(undefined)).toBe('-');
    expect([850, 12_340, 245_000, 7_380_000].map(formatDuration)).toEqual(['850 ms', '12.3 s', '4m 05s', '2h 03m']);
  });

  it('columns padded, left or right, without trailing spaces', () => {
    expect(renderTable(['A', 'NUMBER', 'C'], [['xyz', '1', ''], ['w', '22', 'c']], ['left', 'right'])).toBe(['A    NUMBER  C', 'xyz       1', 'w        22  c'].join('\n'));
  });
});
