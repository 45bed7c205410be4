import { Coordinator } from './coordinator';

/** What a command runs with: its streams and environment, the output mode, and the coordinator (connected lazily). */

export interface Stream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Io {
  stdout: Stream;
  stderr: Stream;
  env: NodeJS.ProcessEnv;
}

export class Context {
  private client?: Coordinator;

  constructor(
    readonly io: Io,
    readonly output: 'text' | 'json',
    readonly address: string,
  ) {}

  /** The coordinator's client, created on first use (commands that need no server never connect). */
  coordinator(): Coordinator {
    // $ALIGNMENT_TOKEN: the bearer token of a coordinator that authenticates (AUTH_TOKENS_FILE).
    this.client ??= new Coordinator(this.address, this.io.env.ALIGNMENT_TOKEN || undefined);
    return this.client;
  }

  /** A line (or lines) on stdout. */
  print(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A value as JSON on stdout (--output json). */
  json(value: unknown): void {
    this.print(JSON.stringify(value, null, 2));
  }

  /** A message for people on stderr, `alignment: ...`. */
  note(text: string): void {
    this.io.stderr.write(`alignment: ${text}\n`);
  }

  close(): void {
    this.client?.close();
  }
}

/** A subcommand: its options (besides the global ones), its help text, and what it does (the exit status). */
export interface Command {
  name: string;
  /** `run -f FILE [--run-id ID] [--wait]` */
  synopsis: string;
  summary: string;
  /** Lines after the synopsis in `alignment CMD --help`: the options and arguments. */
  help: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  run(ctx: Context, values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}
