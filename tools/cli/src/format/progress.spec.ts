import { JobState, Stage, type Progress } from '@alignment/contracts';
import { PLAIN_PROGRESS_EVERY_MS, ProgressReporter, progressText, roundMetricsText } from './progress';

/** A reporter writing to a string, on a clock the test moves. */
function reporter(isTTY: boolean) {
  let now = 1_000_000;
  let text = '';
  const r = new ProgressReporter({ write: (t) => void (text += t), isTTY, columns: 80 }, () => now);
  return { r, advance: (ms: number) => (now += ms), text: () => text };
}

const progress = (done: number, total: number): Progress => ({ done, total, unit: 'steps', tokensPerSecond: 0, etaSeconds: 0 });

describe('progress on stderr', () => {
  it('progress and a round’s metrics as text', () => {
    expect(progressText({ done: 40, total: 64, unit: 'steps', tokensPerSecond: 35.4, etaSeconds: 12 })).toBe('40/64 steps, 35 tok/s, eta 12.0 s');
    expect(progressText({ done: 3, total: 0, unit: 'prompts', tokensPerSecond: 0, etaSeconds: 0 })).toBe('3 prompts');
    expect(roundMetricsText({ round: 1, metrics: { 'eval/win_rate': 0.625, 'eval/win_rate_ci_low': 0.5, 'eval/win_rate_ci_high': 0.75, 'judge/self_label_accuracy': 0.8 } })).toBe(
      'round 1: eval/win_rate 0.625 [0.500, 0.750], judge/self_label_accuracy 0.800',
    );
    expect(roundMetricsText({ round: 1, metrics: { 'eval/win_rate': 0.125, 'eval/win_rate_ci_low': 0, 'eval/win_rate_ci_high': 0.25 } })).toBe(
      'round 1: eval/win_rate 0.125 [0.000, 0.250]',
    );
    expect(roundMetricsText({ round: 0, metrics: { 'train/loss': 0.7 } })).toBeUndefined();
  });

  it('plain: a stamped line per stage event and metrics, progress at most every 10 s per stage', () => {
    const { r, advance, text } = reporter(false);
    r.stage({ round: 0, stage: Stage.STAGE_LEARN, state: JobState.JOB_STATE_RUNNING, message: '' });
    r.progress(progress(1, 64));
    advance(4_000);
    r.progress(progress(20, 64)); // too soon: not printed
    advance(PLAIN_PROGRESS_EVERY_MS);
    r.progress(progress(60, 64));
    advance(1_500);
    r.stage({ round: 0, stage: Stage.STAGE_LEARN, state: JobState.JOB_STATE_SUCCEEDED, message: '' });
    r.metrics({ round: 0, metrics: { 'train/loss': 0.5 } }); // no headline metric yet: no line
    r.metrics({ round: 0, metrics: { 'train/loss': 0.5, 'eval/win_rate': 0.5 } });
    r.stage({ round: 1, stage: Stage.STAGE_GENERATE, state: JobState.JOB_STATE_FAILED, message: 'round 1 GENERATE: boom' });
    r.end();
    expect(text()).toBe(
      [
        '[00:00] round 0 LEARN running',
        '[00:00] round 0 LEARN 1/64 steps',
        '[00:14] round 0 LEARN 60/64 steps',
        '[00:15] round 0 LEARN succeeded (15.5 s)',
        '[00:15] round 0: eval/win_rate 0.500',
        '[00:15] round 1 GENERATE failed: round 1 GENERATE: boom',
        '',
      ].join('\n'),
    );
  });

  it('on a terminal: one live line rewritten in place, lines that stay above it, cleared at the end', () => {
    const { r, advance, text } = reporter(true);
    r.stage({ round: 1, stage: Stage.STAGE_GENERATE, state: JobState.JOB_STATE_RUNNING, message: '' });
    advance(2_000);
    r.progress({ done: 8, total: 24, unit: 'prompts', tokensPerSecond: 0, etaSeconds: 4 });
    advance(3_000);
    r.stage({ round: 1, stage: Stage.STAGE_GENERATE, state: JobState.JOB_STATE_SUCCEEDED, message: '' });
    r.end();
    const CLEAR = '\r\x1b[2K';
    expect(text()).toBe(
      `${CLEAR}[00:00] round 1 GENERATE running 0s` +
        `${CLEAR}[00:02] round 1 GENERATE running 2s: 8/24 prompts, eta 4.0 s` +
        `${CLEAR}[00:05] round 1 GENERATE succeeded (5.0 s)\n`,
    );
  });
});
