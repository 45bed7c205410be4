import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { differences, findOrphans, type RunSnapshot } from './checks';

describe('the orphan scan of a run directory', () => {
  let runDir: string;
  beforeEach(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-checks-'));
    const touch = (rel: string) => {
      fs.mkdirSync(path.dirname(path.join(runDir, rel)), { recursive: true });
      fs.writeFileSync(path.join(runDir, rel), 'x');
    };
    touch('round-0/learn/stage.json');
    touch('round-0/learn/attempt-2/model/config.json');
    touch('round-1/generate/stage.json');
    touch('round-1/generate/responses.jsonl');
  });
  afterEach(() => fs.rmSync(runDir, { recursive: true, force: true }));

  it('finds nothing in a clean run: only the attempt its stage.json names', () => {
    expect(findOrphans(runDir, new Map([['round-0/learn', 2]]))).toEqual([]);
  });

  it('finds other attempts, shard work directories and temporary files of writes that never committed', () => {
    fs.mkdirSync(path.join(runDir, 'round-0/learn/attempt-1'));
    fs.mkdirSync(path.join(runDir, 'round-1/generate/work'));
    fs.writeFileSync(path.join(runDir, 'round-1/generate/.responses.jsonl.tmp-4242-0badf00d'), '');
    fs.writeFileSync(path.join(runDir, 'round-0/learn/attempt-2/model/.config.json.tmp-1-ab12cd34'), '');
    expect(findOrphans(runDir, new Map([['round-0/learn', 2]])).sort()).toEqual([
      'round-0/learn/attempt-1',
      'round-0/learn/attempt-2/model/.config.json.tmp-1-ab12cd34',
      'round-1/generate/.responses.jsonl.tmp-4242-0badf00d',
      'round-1/generate/work',
    ]);
    // A LEARN stage without stage.json keeps no attempt.
    expect(findOrphans(runDir, new Map())).toContain('round-0/learn/attempt-2');
  });
});

describe('the comparison with the undisturbed run', () => {
  const reference: RunSnapshot = {
    outputs: { 'round-1/generate/responses': 'aa', 'round-1/judge/pairs': 'bb' },
    metrics: { '1/judge/num_pairs': 6, '1/train/loss': 0.5, '1/eval/win_rate': 0.625 },
    stages: ['0 3 3', '1 1 3'],
    durationsMs: { '0 LEARN': 900, '1 GENERATE': 120 },
    problems: [],
    orphans: [],
  };

  it('is empty for the same outputs, metrics and stage rows (however long the stages took)', () => {
    expect(differences(reference, { ...structuredClone(reference), durationsMs: { '0 LEARN': 30_000 } })).toEqual([]);
  });

  it('names every output or metric that changed, was lost or is extra, and different stage rows', () => {
    const run: RunSnapshot = {
      ...reference,
      outputs: { 'round-1/generate/responses': 'ab', 'round-1/judge/extra': 'cc' },
      metrics: { '1/judge/num_pairs': 7, '1/eval/win_rate': 0.625 },
      stages: ['0 3 3', '1 1 3', '1 1 3'],
    };
    expect(differences(reference, run)).toEqual([
      'output round-1/generate/responses: ab, undisturbed aa',
      'output round-1/judge/pairs lost',
      'output round-1/judge/extra extra',
      'metric 1/judge/num_pairs: 7, undisturbed 6',
      'metric 1/train/loss lost',
      'stages rows [0 3 3, 1 1 3, 1 1 3], undisturbed [0 3 3, 1 1 3]',
    ]);
  });
});
