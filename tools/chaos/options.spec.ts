import * as path from 'node:path';
import { UsageError, parseChaosOptions } from './options';

describe('npm run chaos options', () => {
  it('defaults to 3 runs, the issue-12 seed and a temporary data dir', () => {
    expect(parseChaosOptions([])).toEqual({ runs: 3, seed: 'issue-12', dataDir: undefined });
  });

  it('takes every option, the data dir resolved against the directory npm was run from', () => {
    expect(parseChaosOptions(['--runs', '10', '--seed', 'ci', '--data-dir', 'ch'], '/home/u')).toEqual({ runs: 10, seed: 'ci', dataDir: path.join('/home/u', 'ch') });
    expect(parseChaosOptions(['--runs=2'])).toEqual({ runs: 2, seed: 'issue-12', dataDir: undefined });
    expect(parseChaosOptions(['--help'])).toBe('help');
  });

  it.each([
    [['--runs', '0'], "--runs: expected an integer in [1, 1000], got '0'"],
    [['--runs', '2.5'], "--runs: expected an integer in [1, 1000], got '2.5'"],
    [['--runs', '1001'], "--runs: expected an integer in [1, 1000], got '1001'"],
    [['--seed', ' '], '--seed: must not be empty'],
    [['--data-dir='], '--data-dir: must not be empty'],
    [['--bogus'], "unknown option '--bogus' (see --help)"],
    [['10'], "unexpected argument '10'"],
    [['--runs'], '--runs: needs a value'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseChaosOptions(argv)).toThrow(UsageError);
    expect(() => parseChaosOptions(argv)).toThrow(message);
  });
});
