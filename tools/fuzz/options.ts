/** `npm run fuzz` options (node:util parseArgs, strict: an unknown option or a stray word exits 2). */
import * as path from 'node:path';
import { parseArgs } from 'node:util';

export const USAGE = `npm run fuzz -- [options]

  --cases N        how many cases to run (default 300), taken in turn from each service and RPC (tools/fuzz/README.md)
  --seed S         the seed the case list is drawn from (default "issue-12"); the same seed gives the same cases
  --data-dir DIR   the services' data directory, fixtures and logs (default: a new temporary directory, removed
                   after a run without failures)
  --port-base P    the five services listen on P..P+4 (coordinator, generator, judge, dro-solver, trainer);
                   default: free ports
  --deadline-s S   per-call deadline in seconds (default 15): a call without a status by then is a hang
  --confine        run the services confined as deployed: ARTIFACT_ROOTS = the data dir, READ_ONLY_ROOTS = the
                   tiny models' directory (paths outside them are PERMISSION_DENIED)
  --only REGEX     run only the catalog cases whose "service RPC name" matches (a JavaScript regular expression),
                   at most --cases of them, e.g. --only 'trainer StartJob sha256:' to rerun failures by name
  --help`;

export class UsageError extends Error {}

export interface FuzzOptions {
  cases: number;
  seed: string;
  /** Absolute; undefined = a temporary directory. */
  dataDir?: string;
  portBase?: number;
  deadlineMs: number;
  /** Only the catalog cases whose "service RPC name" matches. */
  only?: RegExp;
  /** ARTIFACT_ROOTS / READ_ONLY_ROOTS set for every service. */
  confine: boolean;
}

function integer(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name}: expected an integer in [${min}, ${max}], got '${raw}'`);
  }
  return value;
}

export function parseFuzzOptions(argv: string[], cwd = process.cwd()): FuzzOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        cases: { type: 'string' },
        seed: { type: 'string' },
        'data-dir': { type: 'string' },
        'port-base': { type: 'string' },
        'deadline-s': { type: 'string' },
        only: { type: 'string' },
        confine: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.seed !== undefined && v.seed.trim() === '') throw new UsageError('--seed: must not be empty');
  if (v['data-dir'] !== undefined && v['data-dir'].trim() === '') throw new UsageError('--data-dir: must not be empty');
  let only: RegExp | undefined;
  if (v.only !== undefined) {
    try {
      only = new RegExp(v.only);
    } catch (error) {
      throw new UsageError(`--only: not a regular expression: ${(error as Error).message}`);
    }
  }
  return {
    only,
    confine: v.confine === true,
    cases: v.cases === undefined ? 300 : integer('cases', v.cases, 1, 1_000_000),
    seed: v.seed ?? 'issue-12',
    dataDir: v['data-dir'] === undefined ? undefined : path.resolve(cwd, v['data-dir']),
    portBase: v['port-base'] === undefined ? undefined : integer('port-base', v['port-base'], 1024, 65530),
    deadlineMs: (v['deadline-s'] === undefined ? 15 : integer('deadline-s', v['deadline-s'], 1, 600)) * 1000,
  };
}
