import { DeleteRunResponse, Run, StageRecord } from '@alignment/contracts';
import { EXIT_OK, expectPositionals, positiveInteger } from '../args';
import type { Command } from '../context';
import { metricsTable } from '../format/metrics-table';
import { runSummary, runsTable, stagesTable, stateName } from '../format/run-view';
import { METRICS_HELP, metricSelection } from './watch';

/** The commands that read, cancel or delete runs by id: get, ls, cancel, rm, logs (one Coordinator call each). */

export const getCommand: Command = {
  name: 'get',
  synopsis: 'get RUN_ID [--metrics KEYS]',
  summary: "a run's state, position and per-round metrics",
  help: `--output json prints the Run (proto3 JSON, as grpcurl prints it: fields at their default value are left out).

${METRICS_HELP}`,
  options: { metrics: { type: 'string' } },
  async run(ctx, values, positionals) {
    const [runId] = expectPositionals(positionals, ['RUN_ID'], 'get');
    const run = await ctx.coordinator().getRun(runId);
    if (ctx.output === 'json') {
      ctx.json(Run.toJSON(run));
      return EXIT_OK;
    }
    ctx.print(runSummary(run));
    const table = metricsTable(run.rounds, metricSelection(values.metrics));
    if (table) ctx.print(`\n${table}`);
    return EXIT_OK;
  },
};

export const lsCommand: Command = {
  name: 'ls',
  synopsis: 'ls [--limit N]',
  summary: 'the runs, oldest first',
  help: `  --limit N          at most N runs (the oldest N; default all)

--output json prints a JSON array of Runs.`,
  options: { limit: { type: 'string' } },
  async run(ctx, values, positionals) {
    expectPositionals(positionals, [], 'ls');
    const runs = await ctx.coordinator().listRuns(positiveInteger(values.limit, '--limit', 'ls'));
    if (ctx.output === 'json') ctx.json(runs.map((run) => Run.toJSON(run)));
    else if (runs.length === 0) ctx.note(`no runs at ${ctx.address}`);
    else ctx.print(runsTable(runs));
    return EXIT_OK;
  },
};

export const cancelCommand: Command = {
  name: 'cancel',
  synopsis: 'cancel RUN_ID',
  summary: 'cancel a run (the stage in flight stops; `run` with the same spec resumes it)',
  help: `A run that SUCCEEDED cannot be cancelled (FAILED_PRECONDITION, exit 1). --output json prints the Run.`,
  options: {},
  async run(ctx, _values, positionals) {
    const [runId] = expectPositionals(positionals, ['RUN_ID'], 'cancel');
    const run = await ctx.coordinator().cancelRun(runId);
    if (ctx.output === 'json') ctx.json(Run.toJSON(run));
    else ctx.print(`run ${run.runId} ${stateName(run.state)}`);
    return EXIT_OK;
  },
};

export const rmCommand: Command = {
  name: 'rm',
  synopsis: 'rm RUN_ID',
  summary: "delete a run: its directory (every stage's outputs and models) and its records",
  help: `Only the run's owner or an admin may delete it. A RUNNING run is refused (FAILED_PRECONDITION, exit 1): cancel it
first. --output json prints the DeleteRunResponse (run_id, freed_bytes).`,
  options: {},
  async run(ctx, _values, positionals) {
    const [runId] = expectPositionals(positionals, ['RUN_ID'], 'rm');
    const deleted = await ctx.coordinator().deleteRun(runId);
    if (ctx.output === 'json') ctx.json(DeleteRunResponse.toJSON(deleted));
    else ctx.print(`run ${deleted.runId} deleted (${deleted.freedBytes} bytes freed)`);
    return EXIT_OK;
  },
};

export const logsCommand: Command = {
  name: 'logs',
  synopsis: 'logs RUN_ID',
  summary: "a run's stage history: each stage's round, name, state, start and end (UTC), duration and error",
  help: `Every stage the run has started, in order (a stage executed again after a resume shows its last attempt).
--output json prints the StageRecords as a JSON array.`,
  options: {},
  async run(ctx, _values, positionals) {
    const [runId] = expectPositionals(positionals, ['RUN_ID'], 'logs');
    const run = await ctx.coordinator().getRun(runId);
    if (ctx.output === 'json') ctx.json(run.stages.map((stage) => StageRecord.toJSON(stage)));
    else if (run.stages.length === 0) ctx.note(`run ${runId} has started no stage yet (${stateName(run.state)})`);
    else ctx.print(stagesTable(run));
    return EXIT_OK;
  },
};
