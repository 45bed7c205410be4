import * as path from 'node:path';
import { UsageError, parseFuzzOptions } from './options';

describe('npm run fuzz options', () => {
  it('defaults to 300 cases, the issue-12 seed, a temporary data dir, free ports and a 15 s deadline', () => {
    expect(parseFuzzOptions([])).toEqual({ cases: 300, seed: 'issue-12', dataDir: undefined, portBase: undefined, deadlineMs: 15_000, only: undefined, confine: false });
  });

  it('takes every option, the data dir resolved against the directory npm was run from', () => {
    const o = parseFuzzOptions(['--cases', '60', '--seed', 'ci', '--data-dir', 'fz', '--port-base', '52000', '--deadline-s', '5', '--only', 'judge ', '--confine'], '/home/u');
    expect(o).toEqual({ cases: 60, seed: 'ci', dataDir: path.join('/home/u', 'fz'), portBase: 52000, deadlineMs: 5_000, only: /judge /, confine: true });
    expect(parseFuzzOptions(['--help'])).toBe('help');
  });

  it.each([
    [['--cases', '0'], "--cases: expected an integer in [1, 1000000], got '0'"],
    [['--cases', '1e3'], "--cases: expected an integer in [1, 1000000], got '1e3'"],
    [['--port-base', '65535'], "--port-base: expected an integer in [1024, 65530], got '65535'"],
    [['--deadline-s=-1'], "--deadline-s: expected an integer in [1, 600], got '-1'"],
    [['--seed', ' '], '--seed: must not be empty'],
    [['--only', '('], '--only: not a regular expression'],
    [['--bogus'], "Unknown option '--bogus'"],
    [['300'], "Unexpected argument '300'"],
    [['--cases'], "Option '--cases <value>' argument missing"],
  ])('refuses %j', (argv, message) => {
    expect(() => parseFuzzOptions(argv)).toThrow(UsageError);
    expect(() => parseFuzzOptions(argv)).toThrow(message);
  });
});
