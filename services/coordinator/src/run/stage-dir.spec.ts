// Issue 12: orphan attempt-N directories, .tmp-* files and per-stage shard copies were never cleaned.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JobState } from '@alignment/contracts';
import { closeHarnesses, harness, runToEnd } from '../../testing/engine-harness';
import { prepareStageDir, removeStageWork } from './stage-dir';

afterAll(closeHarnesses);

function tree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('a stage directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stage-dir-'));
    for (const d of ['attempt-1', 'attempt-2', 'attempt-3', 'work']) fs.mkdirSync(path.join(dir, d));
    for (const f of ['attempt-1/model.bin', 'attempt-2/model.bin', 'work/pairs.shard-0-of-2.jsonl', 'stage.json',
      '.pairs.jsonl.tmp-123-0a1b2c3d', 'pairs.jsonl', 'judged_pairs.jsonl']) fs.writeFileSync(path.join(dir, f), 'x');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps only the current attempt and the outputs before an execution', async () => {
    await prepareStageDir(dir, 2);
    expect(tree(dir)).toEqual(['attempt-2', 'attempt-2/model.bin', 'judged_pairs.jsonl', 'pairs.jsonl']);
  });

  it("also drops other attempts' LEARN Job work dirs (attempt-N.work), keeping the current one's", async () => {
    for (const d of ['attempt-1.work', 'attempt-2.work']) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, 'attempt-1.work', 'result.json'), '{}');
    fs.writeFileSync(path.join(dir, 'attempt-2.work', 'job-spec.json'), '{}');
    await prepareStageDir(dir, 2);
    expect(tree(dir)).toEqual(['attempt-2', 'attempt-2.work', 'attempt-2.work/job-spec.json', 'attempt-2/model.bin', 'judged_pairs.jsonl', 'pairs.jsonl']);
  });

  it('drops the shard work directory once the stage succeeded', async () => {
    await removeStageWork(dir);
    expect(tree(dir)).not.toContain('work');
    expect(tree(dir)).toContain('attempt-1/model.bin');
  });
});

describe('a sharded run', () => {
  it('leaves no shard work directory behind', async () => {
    const h = harness();
    const run = await runToEnd(h, { sharding: { generatorShards: 2, judgeShards: 2 } });
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const entries = tree(path.join(h.dataDir, 'runs', 'run-1'));
    expect(entries.some((e) => e.endsWith('.jsonl'))).toBe(true);
    expect(entries.filter((e) => e.split(path.sep).includes('work'))).toEqual([]);
  });
});
