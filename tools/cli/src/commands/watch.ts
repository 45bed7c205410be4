import { JobState, Run } from '@alignment/contracts';
import { EXIT_FAILED, EXIT_OK, expectPositionals } from '../args';
import type { Command, Context } from '../context';
import { followRun, StoppedWatching } from '../follow';
import { metricsTable } from '../format/metrics-table';
import { ProgressReporter } from '../format/progress';
import { stateName } from '../format/run-view';

/** Exit status after Ctrl-C (128 + SIGINT): the run goes on. */
const EXIT_INTERRUPTED = 130;

/** --metrics: a comma-separated list of metric keys, `all`, or unset (the defaults). */
export function metricSelection(value: string | boolean | undefined): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  return value
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
}

export const METRICS_HELP = `  --metrics KEYS     the table's columns: metric keys, comma-separated (e.g. eval/win_rate,train/loss), or all
                     (default: eval/win_rate with its 95% CI, eval/lc_win_rate, judge/self_label_accuracy, eval/kl,
                     eval/gold_reward, eval/mean_length, judge/num_pairs, train/loss; those some round has)`;

/** A run that has ended: the Run as JSON, or its state and metrics table; exit 0 when it SUCCEEDED, else 1. */
export function reportFinished(ctx: Context, run: Run, metrics?: string[]): number {
  if (ctx.output === 'json') ctx.json(Run.toJSON(run));
  else {
    ctx.print(`run ${run.runId} ${stateName(run.state)}`);
    const table = metricsTable(run.rounds, metrics);
    if (table) ctx.print(table);
  }
  if (run.state === JobState.JOB_STATE_SUCCEEDED) return EXIT_OK;
  ctx.note(`run ${run.runId} ${stateName(run.state)}${run.error ? `: ${run.error}` : ''}`);
  return EXIT_FAILED;
}

/** Follows a run to its end with progress on stderr, then reports it (reportFinished). Ctrl-C stops watching only. */
export async function followAndReport(ctx: Context, runId: string, metrics?: string[]): Promise<number> {
  const stderr = ctx.io.stderr;
  const reporter = new ProgressReporter({ write: (text) => void stderr.write(text), isTTY: stderr.isTTY === true, columns: stderr.columns });
  const controller = new AbortController();
  const onInterrupt = () => controller.abort();
  process.once('SIGINT', onInterrupt);
  const ticker = stderr.isTTY ? setInterval(() => reporter.tick(), 1000) : undefined;
  let run: Run;
  try {
    run = await followRun(ctx.coordinator(), runId, reporter, (message) => ctx.note(message), controller.signal);
  } catch (error) {
    if (!(error instanceof StoppedWatching)) throw error;
    reporter.end();
    ctx.note(`stopped watching run ${runId}; it goes on (\`npx alignment cancel ${runId}\` stops it)`);
    return EXIT_INTERRUPTED;
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onInterrupt);
    reporter.end();
  }
  return reportFinished(ctx, run, metrics);
}

export const watchCommand: Command = {
  name: 'watch',
  synopsis: 'watch RUN_ID [--metrics KEYS]',
  summary: "follow a run to its end: live progress on stderr, then the per-round metrics table",
  help: `Progress comes from WatchRun's stage and progress events: a live line on a terminal, plain lines otherwise.
Then the run's final state and its metrics table on stdout (--output json: the final Run). Exit status 0 when the
run SUCCEEDED, 1 when it FAILED, was CANCELLED or INTERRUPTED (its error on stderr), 130 after Ctrl-C (the run
goes on).

${METRICS_HELP}`,
  options: { metrics: { type: 'string' } },
  async run(ctx, values, positionals) {
    const [runId] = expectPositionals(positionals, ['RUN_ID'], 'watch');
    return followAndReport(ctx, runId, metricSelection(values.metrics));
  },
};
