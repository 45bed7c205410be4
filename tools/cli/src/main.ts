import { EXIT_FAILED, EXIT_USAGE, LocalError, UsageError, outputMode, parseCommandArgs, splitCommand } from './args';
import { initCommand } from './commands/init';
import { runCommand } from './commands/run';
import { cancelCommand, getCommand, logsCommand, lsCommand, rmCommand } from './commands/runs';
import { watchCommand } from './commands/watch';
import { Context, type Command, type Io } from './context';
import { DEFAULT_ADDRESS, isServiceError, statusMessage } from './coordinator';

/**
 * `npx alignment COMMAND ...`: the Coordinator API from a terminal or a script (tools/cli/README.md). The launcher,
 * tools/cli/bin/alignment.js, runs main() through tsx and exits with the status it returns.
 */

export const COMMANDS: readonly Command[] = [runCommand, watchCommand, getCommand, lsCommand, cancelCommand, rmCommand, logsCommand, initCommand];

const GLOBAL_HELP = `Global options:
  --address HOST:PORT   the coordinator (default $ALIGNMENT_COORDINATOR, else ${DEFAULT_ADDRESS}); $ALIGNMENT_TOKEN,
                        when set, is sent as the bearer token of a coordinator that authenticates (AUTH_TOKENS_FILE)
  -o, --output json     machine-readable output on stdout: the Run (or the list) as JSON; progress stays on stderr
  -h, --help            help; \`alignment COMMAND --help\` for one command`;

const EXIT_HELP = `Exit status: 0 success; 1 the run FAILED, was CANCELLED or INTERRUPTED, or the coordinator answered with an
error (its status code and message on stderr); 2 a usage mistake, or a run file that does not validate.`;

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: npx alignment COMMAND [options]

Runs on the coordinator (proto/alignment/v1/coordinator.proto) from the command line.

Commands:
${lines.join('\n')}

${GLOBAL_HELP}

${EXIT_HELP}
`;
}

export function commandUsage(command: Command): string {
  return `Usage: npx alignment ${command.synopsis}

${command.summary[0].toUpperCase()}${command.summary.slice(1)}.

${command.help}

${GLOBAL_HELP}
`;
}

const defaultIo = (): Io => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });

/** Runs one command line; resolves with the exit status (nothing is thrown). */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  const { command: name, rest } = splitCommand(argv);
  const command = name === undefined || name === 'help' ? undefined : COMMANDS.find((c) => c.name === name);
  let ctx: Context | undefined;
  try {
    if (name !== undefined && name !== 'help' && !command) throw new UsageError(`unknown command '${name}'`);
    const { values, positionals } = parseCommandArgs(rest, command?.options ?? {}, command?.name);
    if (!command) {
      if (name === 'help' && positionals.length > 0) {
        const topic = COMMANDS.find((c) => c.name === positionals[0]);
        if (!topic) throw new UsageError(`unknown command '${positionals[0]}'`);
        io.stdout.write(commandUsage(topic));
        return 0;
      }
      if (values.help === true || name === 'help') {
        io.stdout.write(usage());
        return 0;
      }
      throw new UsageError('give a command');
    }
    if (values.help === true) {
      io.stdout.write(commandUsage(command));
      return 0;
    }
    const address = typeof values.address === 'string' ? values.address : io.env.ALIGNMENT_COORDINATOR || DEFAULT_ADDRESS;
    ctx = new Context(io, outputMode(values.output, command.name), address);
    return await command.run(ctx, values, positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      const help = error.command ? `npx alignment ${error.command} --help` : 'npx alignment --help';
      io.stderr.write(`alignment: ${error.message} (see ${help})\n`);
      return EXIT_USAGE;
    }
    if (error instanceof LocalError) {
      io.stderr.write(`alignment: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (isServiceError(error)) {
      io.stderr.write(`alignment: ${statusMessage(error, ctx?.address ?? DEFAULT_ADDRESS)}\n`);
      return EXIT_FAILED;
    }
    io.stderr.write(`alignment: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_FAILED;
  } finally {
    ctx?.close();
  }
}
