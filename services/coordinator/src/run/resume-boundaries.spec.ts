// Resume at every stage boundary: a coordinator stopped right after stage k finished (its stage.json written and
// recorded, the next not started) resumes by executing exactly the stages after k, skipping the verified ones, and
// ends with the artifacts of a run that was never stopped. The skip decision and the execution read the same
// declared inputs (stages/*.ts), so a drift between them would show here as a re-executed or a missing stage.
import { JobState, Stage } from '@alignment/contracts';
import { artifactShas, closeHarnesses, harness, runToEnd, stageRuns } from '../../testing/engine-harness';
import { validSpec } from '../../testing/run-fixtures';

afterAll(closeHarnesses);

describe('resume', () => {
  const planned = [
    '0 STAGE_LEARN', '0 STAGE_EVALUATE',
    '1 STAGE_GENERATE', '1 STAGE_JUDGE', '1 STAGE_LEARN', '1 STAGE_EVALUATE',
    '2 STAGE_GENERATE', '2 STAGE_JUDGE', '2 STAGE_LEARN', '2 STAGE_EVALUATE',
  ];
  it.each(planned.slice(0, -1).map((stage, k) => [k + 1, stage]))(
    'after a stop at the boundary after stage %i (%s): runs exactly the unfinished stages, with the same artifacts',
    async (finished) => {
      const h = harness();
      let done = 0;
      await h.engine.startRun({ runId: 'run-1', spec: validSpec(h.ws) });
      const watch = h.engine.watch('run-1', (e) => {
        if (e.kind === 'stage' && e.state === JobState.JOB_STATE_SUCCEEDED && ++done === finished) void h.engine.stop();
      });
      await h.engine.settled('run-1');
      watch.unsubscribe();
      const stopped = h.engine.getRun('run-1');
      expect(stopped.state).toBe(JobState.JOB_STATE_RUNNING);
      expect(stopped.stages.filter((s) => s.state === JobState.JOB_STATE_SUCCEEDED).map((s) => `${s.round} ${Stage[s.stage]}`)).toEqual(
        planned.slice(0, finished),
      );

      const next = h.restart();
      expect(next.engine.resumeAll()).toEqual(['run-1']);
      const unsubscribe = next.engine.watch('run-1', (e) => next.events.push(e)).unsubscribe;
      await next.engine.settled('run-1');
      unsubscribe();
      expect(next.engine.getRun('run-1').state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect(stageRuns(next.events)).toEqual(planned.slice(finished));
      const skipped = next.events.filter((e) => e.kind === 'stage' && e.message === 'complete and verified; not executed again');
      expect(skipped).toHaveLength(finished);

      await runToEnd(next, {}, 'reference');
      expect(artifactShas(next, 'run-1')).toEqual(artifactShas(next, 'reference'));
    },
  );
});
