import { Configuration, JobState, Stage, type Run } from '@alignment/contracts';
import { formatDuration, formatTime, renderTable } from './text-table';

/** Runs and their stages as text: `get`'s summary, `ls`'s table, `logs`'s stage history. */

const strip = (name: string | undefined, prefix: string, fallback: number) => (name ?? String(fallback)).replace(prefix, '');

/** SUCCEEDED for JOB_STATE_SUCCEEDED. */
export const stateName = (state: JobState) => strip(JobState[state], 'JOB_STATE_', state);
/** GENERATE for STAGE_GENERATE. */
export const stageName = (stage: Stage) => strip(Stage[stage], 'STAGE_', stage);

/** The states a run ends in; WatchRun ends with one of them. */
export function isFinished(state: JobState): boolean {
  return [JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_INTERRUPTED].includes(state);
}

/** `get`'s key-value lines. */
export function runSummary(run: Run): string {
  const spec = run.spec;
  const lines: Array<[string, string]> = [
    ['run', run.runId],
    ['name', spec?.name || '-'],
    ['state', stateName(run.state)],
    ['configuration', spec ? `${strip(Configuration[spec.configuration], 'CONFIGURATION_', spec.configuration)}, ${spec.rounds} rounds` : '-'],
    ['position', run.currentStage === Stage.STAGE_UNSPECIFIED ? '-' : `round ${run.currentRound} ${stageName(run.currentStage)}`],
    ['created', formatTime(run.createdAt)],
    ['updated', formatTime(run.updatedAt)],
  ];
  if (run.automaticResumes > 0) lines.push(['auto-resumes', String(run.automaticResumes)]);
  if (run.latestModel?.onnx?.uri) lines.push(['latest model', run.latestModel.hfCheckpoint?.uri || run.latestModel.onnx.uri]);
  if (run.traceId) lines.push(['trace', run.traceId]);
  if (run.error) lines.push(['error', run.error]);
  const width = Math.max(...lines.map(([key]) => key.length));
  return lines.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

/** `ls`'s table, one run per line. */
export function runsTable(runs: readonly Run[]): string {
  return renderTable(
    ['RUN', 'STATE', 'ROUND', 'STAGE', 'CREATED', 'NAME'],
    runs.map((r) => [
      r.runId,
      stateName(r.state),
      String(r.currentRound),
      r.currentStage === Stage.STAGE_UNSPECIFIED ? '-' : stageName(r.currentStage),
      formatTime(r.createdAt),
      r.spec?.name ?? '',
    ]),
    ['left', 'left', 'right'],
  );
}

/** `logs`'s table: every stage the run has started, in order, with its times and error. */
export function stagesTable(run: Run): string {
  return renderTable(
    ['ROUND', 'STAGE', 'STATE', 'STARTED', 'FINISHED', 'TOOK', 'ERROR'],
    run.stages.map((s) => [
      String(s.round),
      stageName(s.stage),
      stateName(s.state),
      formatTime(s.startedAt),
      formatTime(s.finishedAt),
      s.startedAt && s.finishedAt ? formatDuration(s.finishedAt.getTime() - s.startedAt.getTime()) : '-',
      s.error.replace(/\s+/g, ' '),
    ]),
    ['right'],
  );
}
