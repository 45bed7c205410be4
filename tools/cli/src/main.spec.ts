import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '@alignment/service-kit/testing';
import { splitCommand } from './args';
import { templateFor } from './commands/init';
import { main } from './main';
import { loadRunFile } from './run-file/load';

/** main() in process, with captured streams; nothing listens at the address (a call would fail UNAVAILABLE). */
const ROOT = path.resolve(__dirname, '../../..');
let dir: string;
let address: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-main-'));
  address = `127.0.0.1:${await freePort()}`;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { ALIGNMENT_COORDINATOR: address },
  });
  return { code, stdout, stderr };
}

describe('options', () => {
  it('finds the command after global options and their values', () => {
    expect(splitCommand(['--address', 'h:1', 'get', 'x'])).toEqual({ command: 'get', rest: ['--address', 'h:1', 'x'] });
    expect(splitCommand(['-o', 'json', 'ls'])).toEqual({ command: 'ls', rest: ['-o', 'json'] });
    expect(splitCommand(['--help'])).toEqual({ rest: ['--help'] });
  });

  it('--help: the commands, or one command’s options; exit 0', async () => {
    const all = await cli('--help');
    expect(all).toMatchObject({ code: 0, stderr: '' });
    for (const name of ['run', 'watch', 'get', 'ls', 'cancel', 'rm', 'logs', 'init']) expect(all.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect(all.stdout).toContain('--address HOST:PORT');
    const run = await cli('run', '--help');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: npx alignment run -f FILE');
    expect(run.stdout).toContain('--no-validate');
    expect((await cli('help', 'watch')).stdout).toContain('Usage: npx alignment watch RUN_ID');
  });

  it('a usage mistake exits 2 with a message naming it', async () => {
    const cases: Array<[string[], string]> = [
      [[], 'give a command'],
      [['frobnicate'], "unknown command 'frobnicate'"],
      [['ls', '--verbose'], "unknown option '--verbose'"],
      [['ls', 'extra'], "ls: unexpected argument 'extra'"],
      [['get'], 'get: missing RUN_ID'],
      [['ls', '--limit', '0'], '--limit must be a positive integer'],
      [['get', 'x', '--output', 'yaml'], "--output must be json or text, got 'yaml'"],
      [['run'], 'run: -f FILE is required'],
      [['run', '-f'], '--file needs a value'],
      [['get', '--address', '--output', 'x'], "--address needs a value (write a value that starts with '-' as --address=VALUE)"],
      [['run', '-f', 'x.yaml', '--wait=yes'], '--wait takes no value'],
    ];
    for (const [argv, message] of cases) {
      const result = await cli(...argv);
      expect({ argv, code: result.code, stdout: result.stdout }).toEqual({ argv, code: 2, stdout: '' });
      expect(result.stderr).toContain(message);
    }
  });
});

describe('run', () => {
  const micro = fs.readFileSync(path.join(ROOT, 'examples/micro-run.yaml'), 'utf8');

  it('a run file that does not validate exits 2 naming the field, before any call', async () => {
    const file = path.join(dir, 'bad-beta.yaml');
    fs.writeFileSync(file, micro.replace('beta: 0.1 ', 'beta: -1  '));
    const result = await cli('run', '-f', file, '--wait');
    expect(result).toEqual({ code: 2, stdout: '', stderr: `alignment: ${file}: invalid spec.loss.beta: must be greater than 0, got -1\n` });
    // Unknown fields and unset variables too.
    fs.writeFileSync(file, micro.replace('  seed: 7', '  sed: 7'));
    expect((await cli('run', '-f', file)).stderr).toContain('invalid spec.sed: unknown field of RunSpec (did you mean seed?)');
    fs.writeFileSync(file, micro.replace('${DATA_DIR:-../.data}/micro/seed_pairs.conversational.jsonl', '${SEEDS}'));
    expect((await cli('run', '-f', file)).stderr).toContain('invalid spec.seed_pairs.uri: environment variable SEEDS is not set');
    expect((await cli('run', '-f', path.join(dir, 'none.yaml'))).stderr).toBe(`alignment: ${path.join(dir, 'none.yaml')}: no such file\n`);
  });

  it('--run-id is checked as the coordinator checks it', async () => {
    const file = path.join(dir, 'ok.yaml');
    fs.writeFileSync(file, micro);
    const result = await cli('run', '-f', file, '--run-id', 'no spaces');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("alignment: --run-id: invalid run_id: must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit, got 'no spaces'");
  });

  it('a coordinator that does not answer: exit 1 with the status code', async () => {
    const result = await cli('get', 'x');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^alignment: UNAVAILABLE: .*is the coordinator running at 127\.0\.0\.1:\d+\?/);
  });
});

describe('init', () => {
  it('writes the commented micro run, whose data paths still point at the repo’s .data, and never overwrites', async () => {
    const file = path.join(dir, 'sub', 'run.yaml');
    fs.mkdirSync(path.dirname(file));
    const first = await cli('init', file);
    expect(first).toMatchObject({ code: 0, stdout: `${file}\n` });
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toContain('# ');
    expect(text).toContain(`npx alignment run -f ${file} --wait`);
    // Outside the repo: the default data directory is absolute.
    expect(text).toContain(`\${DATA_DIR:-${path.join(ROOT, '.data')}}/micro/seed_pairs.conversational.jsonl`);
    expect(loadRunFile(file, {})).toEqual(loadRunFile(path.join(ROOT, 'examples/micro-run.yaml'), {}));

    fs.writeFileSync(file, 'mine\n');
    const again = await cli('init', file);
    expect(again).toEqual({ code: 2, stdout: '', stderr: `alignment: ${file} exists; not overwritten (remove it, or name another FILE)\n` });
    expect(fs.readFileSync(file, 'utf8')).toBe('mine\n');
  });

  it('inside the repo, the data paths are relative to the new file', () => {
    expect(templateFor('run.yaml', ROOT)).toContain('"${DATA_DIR:-.data}/micro/model/onnx"');
    expect(templateFor('runs/nightly/run.yaml', ROOT)).toContain('"${DATA_DIR:-../../.data}/micro/model/onnx"');
    expect(templateFor('runs/nightly/run.yaml', ROOT)).toContain('npx alignment run -f runs/nightly/run.yaml --wait');
  });
});
