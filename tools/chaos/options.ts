/** `npm run chaos` options (node:util parseArgs through tools/demo/cli-flags.ts: an unknown option or a stray word exits 2). */
import * as path from 'node:path';
import { UsageError, parseFlags } from '../demo/cli-flags';

export { UsageError };

export const USAGE = `npm run chaos -- [options]

  --runs N         disturbed micro runs after the undisturbed reference run (default 3)
  --seed S         the seed the faults are drawn from (default "issue-12"); the same seed gives the same faults
  --data-dir DIR   the stack's data directory (default: a new temporary directory, removed after a run without
                   failures)
  --help`;

export interface ChaosOptions {
  runs: number;
  seed: string;
  /** Absolute; undefined = a temporary directory. */
  dataDir?: string;
}

function integer(flag: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag}: expected an integer in [${min}, ${max}], got '${raw}'`);
  }
  return value;
}

export function parseChaosOptions(argv: readonly string[], cwd = process.cwd()): ChaosOptions | 'help' {
  const flags = parseFlags(argv, ['--runs', '--seed', '--data-dir']);
  if (flags.help) return 'help';
  const seed = flags.values.get('--seed');
  const dataDir = flags.values.get('--data-dir');
  const runs = flags.values.get('--runs');
  if (seed !== undefined && seed.trim() === '') throw new UsageError('--seed: must not be empty');
  if (dataDir !== undefined && dataDir.trim() === '') throw new UsageError('--data-dir: must not be empty');
  return {
    runs: runs === undefined ? 3 : integer('--runs', runs, 1, 1000),
    seed: seed ?? 'issue-12',
    dataDir: dataDir === undefined ? undefined : path.resolve(cwd, dataDir),
  };
}
