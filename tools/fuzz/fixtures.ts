/** The files the cases point at, made in <data dir>/fixtures: valid inputs, bad inputs, and places to write to. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Fixtures } from './model';
import { FuzzRng } from './wire';

const jsonl = (records: unknown[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

function mkfifo(file: string): string | undefined {
  const made = spawnSync('mkfifo', [file], { stdio: 'ignore' });
  return made.status === 0 ? file : undefined;
}

/** Writes the fixtures under `dir` (made fresh) and returns their paths; `models` are the tiny models' directories. */
export function makeFixtures(dir: string, models: Fixtures['models']): Fixtures {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const file = (name: string, content: string | Buffer) => {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    return p;
  };
  const mkdir = (name: string) => {
    const p = path.join(dir, name);
    fs.mkdirSync(p, { recursive: true });
    return p;
  };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  const valid: Fixtures['valid'] = {
    seedPairs: file('valid/seed-pairs.jsonl', jsonl(range(6).map((i) => ({ prompt: `Seed: what is ${i} + ${i}?`, chosen: String(2 * i), rejected: String(2 * i + 1) })))),
    prompts: file('valid/prompts.jsonl', jsonl(range(12).map((i) => ({ prompt: `What is ${i} + 2?`, id: `p${i}` })))),
    roundPrompts: [file('valid/round-1.jsonl', jsonl(range(4).map((i) => ({ prompt: `Round one: what is ${i} + 5?` }))))],
    evalPrompts: file('valid/eval.jsonl', jsonl(range(3).map((i) => ({ prompt: `Evaluate: what is ${i} + 7?` })))),
    responses: file(
      'valid/responses.jsonl',
      jsonl(range(4).map((i) => ({ prompt_index: i - 1, prompt: `What is ${i} + 1?`, responses: [String(i + 1), `${i + 2} maybe`], finish_reasons: ['stop', 'length'] }))),
    ),
    sftData: file('valid/sft.jsonl', jsonl(range(4).map((i) => ({ prompt: `What is ${i} + 3?`, response: String(i + 3) })))),
  };

  const loopA = path.join(dir, 'bad/loop-a');
  fs.mkdirSync(path.dirname(loopA), { recursive: true });
  fs.symlinkSync(path.join(dir, 'bad/loop-b'), loopA);
  fs.symlinkSync(loopA, path.join(dir, 'bad/loop-b'));
  const toPasswd = path.join(dir, 'bad/to-passwd.jsonl');
  fs.symlinkSync('/etc/passwd', toPasswd);
  const fakeModelDir = mkdir('bad/fake-model');
  for (const name of ['model.onnx', 'config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
    fs.writeFileSync(path.join(fakeModelDir, name), name === 'model.onnx' ? new FuzzRng('fixtures', 'onnx').bytes(2048) : '{"not": "what you expect"');
  }
  const bad: Fixtures['bad'] = {
    // One JSON object of 600 KB and no newline: a prompt over MAX_TEXT_BYTES on an unterminated last line.
    longLine: file('bad/long-line.jsonl', JSON.stringify({ prompt: 'a'.repeat(600 * 1024), chosen: 'b', rejected: 'c', response: 'd' })),
    binary: file('bad/binary.bin', new FuzzRng('fixtures', 'binary').bytes(4096)),
    notJson: file('bad/not-json.jsonl', 'this is not json\n{"prompt": \n\u0000\u0001\u0002\n'),
    wrongShape: file(
      'bad/wrong-shape.jsonl',
      '[1,2,3]\n{"prompt": 5}\nnull\n{"prompt": "x", "chosen": {"a": 1}, "rejected": [], "responses": "str", "prompt_index": -1e308, "finish_reasons": 7}\n',
    ),
    empty: file('bad/empty.jsonl', ''),
    fifo: mkfifo(path.join(dir, 'bad/fifo.jsonl')),
    symlinkLoop: loopA,
    symlinkToPasswd: toPasswd,
    emptyDir: mkdir('bad/empty-dir'),
    fakeModelDir,
  };

  const outputs: Fixtures['outputs'] = {
    existingFile: file('out/existing.jsonl', 'old content\n'),
    emptyDir: mkdir('out/empty-dir'),
    nonEmptyDir: path.dirname(file('out/non-empty-dir/keep.txt', 'keep\n')),
    missingParent: path.join(dir, 'out/missing/deeper/out.jsonl'),
    fifo: mkfifo(path.join(dir, 'out/fifo.jsonl')),
  };
  return { dir, models, valid, bad, outputs };
}

/** Paths for a case list that is only built, never sent (the unit spec): nothing is written. */
export function fakeFixtures(dir = '/fuzz-fixtures'): Fixtures {
  const p = (name: string) => path.join(dir, name);
  return {
    dir,
    models: { policy: p('m/policy'), reference: p('m/reference'), reward: p('m/reward'), checkpoint: p('m/checkpoint') },
    valid: { seedPairs: p('s.jsonl'), prompts: p('p.jsonl'), roundPrompts: [p('r1.jsonl')], evalPrompts: p('e.jsonl'), responses: p('re.jsonl'), sftData: p('sft.jsonl') },
    bad: {
      longLine: p('l'),
      binary: p('b'),
      notJson: p('n'),
      wrongShape: p('w'),
      empty: p('e'),
      fifo: p('f'),
      symlinkLoop: p('loop'),
      symlinkToPasswd: p('pw'),
      emptyDir: p('ed'),
      fakeModelDir: p('fm'),
    },
    outputs: { existingFile: p('o/x'), emptyDir: p('o/e'), nonEmptyDir: p('o/n'), missingParent: p('o/m/x'), fifo: p('o/f') },
  };
}
