// The coordinator's TensorBoard event file: CRC-32C against its published check value, and a whole run's round
// metrics read back by TensorBoard's own loader (EventAccumulator, in the trainer's virtualenv).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Configuration, JobState, Stage } from '@alignment/contracts';
import { closeHarnesses, harness, runToEnd } from '../../testing/engine-harness';
import { venvPython } from '../../../../tools/testing/tiny-models';
import { COORDINATOR_LOG_DIR, EVENTS_FILE, crc32c, tfRecord } from './tensorboard';

afterAll(closeHarnesses);

const READ_SCALARS = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1])
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
`;

async function readScalars(dir: string): Promise<Record<string, Array<[number, number]>>> {
  const { stdout } = await promisify(execFile)(await venvPython(), ['-c', READ_SCALARS, dir], { timeout: 120_000 });
  return JSON.parse(stdout);
}

describe('TensorBoard events', () => {
  it('checksums records with CRC-32C (check value of "123456789" is 0xE3069283)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const record = tfRecord(Buffer.from('abc'));
    expect(record.length).toBe(8 + 4 + 3 + 4);
    expect(record.readBigUInt64LE(0)).toBe(3n);
  });

  it("writes every round's metrics, one step per round, readable by TensorBoard's loader", async () => {
    const h = harness();
    const run = await runToEnd(h);
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const dir = path.join(h.dataDir, 'runs', 'run-1', COORDINATOR_LOG_DIR);
    expect(fs.readdirSync(dir)).toEqual([EVENTS_FILE]);
    const scalars = await readScalars(dir);
    for (const name of ['eval/win_rate', 'eval/win_rate_ci_low', 'train/rewards/margins', 'judge/self_label_accuracy']) {
      const expected = run.rounds.filter((r) => name in r.metrics).map((r) => [r.round, r.metrics[name]]);
      expect(expected.length).toBeGreaterThan(0);
      expect(scalars[name]?.map(([step]) => step)).toEqual(expected.map(([round]) => round));
      // simple_value is a float32
      scalars[name].forEach(([, value], i) => expect(value).toBeCloseTo(expected[i][1], 5));
    }
    expect(scalars['judge/self_label_accuracy'].map(([step]) => step)).toEqual([1, 2]);
  }, 180_000);

  it('writes the metrics of a stage whose stage.json the database never recorded when the run resumes', async () => {
    const h = harness();
    await runToEnd(h, { configuration: Configuration.CONFIGURATION_DPO_SEED });
    const dir = path.join(h.dataDir, 'runs', 'run-1', COORDINATOR_LOG_DIR);
    // The process died between writing round 0 EVALUATE's stage.json and committing it, before its events.
    fs.rmSync(dir, { recursive: true });
    h.store.startStage('run-1', 0, Stage.STAGE_EVALUATE);
    h.store.setRunState('run-1', JobState.JOB_STATE_RUNNING);
    h.engine.resumeAll();
    await h.engine.settled('run-1');
    const winRate = h.engine.getRun('run-1').rounds[0].metrics['eval/win_rate'];
    const scalars = await readScalars(dir);
    expect(scalars['eval/win_rate'].map(([step]) => step)).toEqual([0]);
    expect(scalars['eval/win_rate'][0][1]).toBeCloseTo(winRate, 5);
    expect(scalars['train/rewards/margins']).toBeUndefined(); // LEARN was recorded: verified, not written again
  }, 180_000);
});
