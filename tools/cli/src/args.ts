import { parseArgs } from 'node:util';

/** Exit statuses: 0 success; 1 a run that failed, or a server error; 2 a usage mistake or a local validation error. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A command-line mistake: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Something wrong on this side before any call (a run file that cannot be used): printed as it is, exit 2. */
export class LocalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalError';
  }
}

export type OptionSpec = { type: 'string' | 'boolean'; short?: string };

/** The options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  address: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
};

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** The command word: the first argument that is neither an option nor a global option's value. */
export function splitCommand(argv: readonly string[]): { command?: string; rest: string[] } {
  const valued = new Set(
    Object.entries(GLOBAL_OPTIONS)
      .filter(([, spec]) => spec.type === 'string')
      .flatMap(([name, spec]) => [`--${name}`, ...(spec.short ? [`-${spec.short}`] : [])]),
  );
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--') return { rest: [...argv] };
    if (valued.has(word)) {
      i++;
      continue;
    }
    if (!word.startsWith('-')) return { command: word, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { rest: [...argv] };
}

/** Strict parsing (node:util parseArgs): an unknown option or a stray word is a UsageError naming it. */
export function parseCommandArgs(argv: readonly string[], options: Record<string, OptionSpec>, command?: string): ParsedArgs {
  try {
    const parsed = parseArgs({ args: [...argv], options: { ...GLOBAL_OPTIONS, ...options }, strict: true, allowPositionals: true });
    return { values: parsed.values as ParsedArgs['values'], positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError(reword(error as Error & { code?: string }), command);
  }
}

/** parseArgs' messages, shorter and naming the option as typed. */
function reword(error: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  // 'Option '-f, --file <value>' argument missing': the long name when there is one.
  const flag = /--[A-Za-z0-9-]+/.exec(quoted)?.[0] ?? /^-[^\s=,]+/.exec(quoted)?.[0] ?? quoted;
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${flag}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(error.message)) return `${flag} takes no value`;
      if (/ambiguous/.test(error.message)) return `${flag} needs a value (write a value that starts with '-' as ${flag}=VALUE)`;
      return `${flag} needs a value`;
    default:
      return error.message;
  }
}

/** The positionals a command takes: exactly `names` (the last may be optional when `optional` is set). */
export function expectPositionals(positionals: readonly string[], names: readonly string[], command: string, optional = false): string[] {
  const min = optional ? names.length - 1 : names.length;
  if (positionals.length < min) throw new UsageError(`${command}: missing ${names[positionals.length]}`, command);
  if (positionals.length > names.length) throw new UsageError(`${command}: unexpected argument '${positionals[names.length]}'`, command);
  return [...positionals];
}

/** --output: 'text' (default) or 'json'. */
export function outputMode(value: string | boolean | undefined, command?: string): 'text' | 'json' {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw new UsageError(`--output must be json or text, got '${String(value)}'`, command);
}

/** A positive integer option (`--limit 10`). */
export function positiveInteger(value: string | boolean | undefined, flag: string, command: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^[0-9]+$/.test(text) || Number(text) < 1) throw new UsageError(`${flag} must be a positive integer, got '${text}'`, command);
  return Number(text);
}
