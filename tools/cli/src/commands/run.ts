import { Run, StartRunRequest, type RunSpec } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { checkRunId, validateSpec } from '../../../../services/coordinator/src/run/run-spec';
import { EXIT_OK, LocalError, UsageError, expectPositionals } from '../args';
import type { Command } from '../context';
import { isFinished, stateName } from '../format/run-view';
import { loadRunFile, RunFileError } from '../run-file/load';
import { METRICS_HELP, followAndReport, metricSelection } from './watch';

/** A run file's problem as the CLI reports it (exit 2), the file first: `run.yaml: invalid spec.loss.beta: ...`. */
function local(file: string, error: unknown): never {
  if (error instanceof RunFileError || error instanceof InvalidArgumentError) throw new LocalError(`${file}: ${error.message}`);
  throw error;
}

/** The run file, its run id (--run-id over the file's), checked as the coordinator checks them (validateSpec). */
async function prepare(file: string, runIdOption: string | undefined, env: NodeJS.ProcessEnv, validate: boolean): Promise<{ runId: string; spec: RunSpec }> {
  let loaded: { runId: string; spec: RunSpec };
  try {
    loaded = loadRunFile(file, env);
  } catch (error) {
    local(file, error);
  }
  const runId = runIdOption ?? loaded!.runId;
  if (runId !== '') {
    try {
      checkRunId(runId);
    } catch (error) {
      local(runIdOption !== undefined ? '--run-id' : file, error);
    }
  }
  if (validate) {
    try {
      // The coordinator's own validation: the same messages, before anything is sent. It reads every input file
      // here, so it needs them on this machine (--no-validate for a coordinator elsewhere).
      await validateSpec(loaded!.spec);
    } catch (error) {
      local(file, error);
    }
  }
  return { runId, spec: loaded!.spec };
}

export const runCommand: Command = {
  name: 'run',
  synopsis: 'run -f FILE [--run-id ID] [--wait] [--dry-run] [--no-validate] [--metrics KEYS]',
  summary: 'start a run from a run file (YAML or JSON); with --wait, follow it to its end',
  help: `  -f, --file FILE    the run file: a RunSpec, or run_id and spec (a StartRunRequest), in YAML or JSON (.json);
                     proto field names in snake_case or lowerCamelCase, enums by name, \${VAR} and \${VAR:-default}
                     from the environment, relative paths relative to the file (\`alignment init\` writes one)
  --run-id ID        the run's id (default: the file's run_id, else the coordinator names it); starting the same
                     id and spec again returns the run, resuming it if it failed or was cancelled
  --wait             follow the run to its end, as \`watch\` does (exit 0 when it SUCCEEDED, 1 otherwise)
  --dry-run          check the file and print the StartRunRequest it makes (JSON); start nothing
  --no-validate      skip the local check (the coordinator's validateSpec, which reads every input file here):
                     for a coordinator whose files are not on this machine
${METRICS_HELP}

The file is checked before anything is sent: a field that is unknown, of the wrong type or out of range exits 2
naming it (invalid spec.loss.beta: must be > 0, got -1). Then StartRun; stdout gets the run id (--output json:
the Run; with --wait, the final Run).`,
  options: {
    file: { type: 'string', short: 'f' },
    'run-id': { type: 'string' },
    wait: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    'no-validate': { type: 'boolean' },
    metrics: { type: 'string' },
  },
  async run(ctx, values, positionals) {
    expectPositionals(positionals, [], 'run');
    const file = values.file;
    if (typeof file !== 'string' || file === '') throw new UsageError('run: -f FILE is required (`alignment init` writes an example)', 'run');
    const runIdOption = typeof values['run-id'] === 'string' ? values['run-id'] : undefined;
    const { runId, spec } = await prepare(file, runIdOption, ctx.io.env, values['no-validate'] !== true);
    if (values['dry-run'] === true) {
      ctx.json(StartRunRequest.toJSON({ runId, spec }));
      ctx.note(`${file} is valid; nothing started (--dry-run)`);
      return EXIT_OK;
    }
    const run = await ctx.coordinator().startRun(runId, spec);
    if (values.wait === true) {
      ctx.note(`run ${run.runId} ${stateName(run.state)} at ${ctx.address}`);
      if (ctx.output === 'text') ctx.print(run.runId);
      return followAndReport(ctx, run.runId, metricSelection(values.metrics));
    }
    if (ctx.output === 'json') ctx.json(Run.toJSON(run));
    else {
      ctx.print(run.runId);
      const follow = isFinished(run.state) ? '' : `; \`npx alignment watch ${run.runId}\` follows it`;
      ctx.note(`run ${run.runId} ${stateName(run.state)} at ${ctx.address}${follow}`);
    }
    return EXIT_OK;
  },
};
