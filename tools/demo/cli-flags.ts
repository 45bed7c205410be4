import { parseArgs } from 'node:util';

/** A command-line mistake: the command prints the message and its usage, and exits 2. */
export class UsageError extends Error {}

export interface ParsedFlags {
  /** `--name value` / `--name=value` options, by name with the dashes (`--world`). */
  values: Map<string, string>;
  /** Boolean options that were given, by name with the dashes (`--book-only`). */
  switches: Set<string>;
  help: boolean;
}

/**
 * Reads a command's options strictly (node:util parseArgs): every option must be one of `valued` or `switches`,
 * and a word that is not an option's value (`npm run demo -- arithmetic`) is an error instead of being ignored.
 * `--help` / `-h` is always known. Errors are UsageErrors naming the option or word.
 */
export function parseFlags(argv: readonly string[], valued: readonly string[], switches: readonly string[] = []): ParsedFlags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const flag of valued) options[bare(flag)] = { type: 'string' };
  for (const flag of switches) options[bare(flag)] = { type: 'boolean' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  } catch (error) {
    throw usageError(error as Error & { code?: string });
  }
  const values = new Map<string, string>();
  const given = new Set<string>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === 'string') values.set(`--${name}`, value);
    else if (value === true && name !== 'help') given.add(`--${name}`);
  }
  return { values, switches: given, help: parsed.values.help === true };
}

function bare(flag: string): string {
  if (!/^--[a-z][a-z0-9-]*$/.test(flag)) throw new Error(`not a long option name: '${flag}'`);
  return flag.slice(2);
}

/** parseArgs' errors, reworded to name the option the way the commands' other messages do (`--flag: ...`). */
function usageError(error: Error & { code?: string }): UsageError {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  const flag = /^(-{1,2}[^\s=]+)/.exec(quoted)?.[1] ?? quoted;
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option '${flag}' (see --help)`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument '${quoted}': options are written --name value (see --help)`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/ambiguous/.test(error.message)) {
        return new UsageError(`${flag}: needs a value (write a value that starts with '-' as ${flag}=VALUE)`);
      }
      if (/does not take an argument/.test(error.message)) return new UsageError(`${flag}: takes no value`);
      return new UsageError(`${flag}: needs a value`);
    default:
      return new UsageError(error.message);
  }
}
