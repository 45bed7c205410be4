// The reviewer checks' contract: run exactly as a reviewer would (`npx nx run artifacts:s3-check`, the cheapest of
// the three), the last line of the output is the check's JSON, after nx's own footer (tools/ci/result-line.ts).
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { lastLine, resultLine } from './result-line';

const REPO_ROOT = path.resolve(__dirname, '../..');

/** Runs a shell command in the repository root; resolves once every holder of its stdout/stderr has closed them. */
function run(command: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, { cwd: REPO_ROOT, shell: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** The text without ANSI escape sequences: nx colours its footer wherever the environment asks for colour (FORCE_COLOR
 *  in CI), which splits "Successfully ran target" from the target's name with bold on and off. */
const withoutAnsi = (text: string): string => text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');

function expectS3Result(colored: string): void {
  const output = withoutAnsi(colored);
  expect(output).toContain('Successfully ran target s3-check'); // nx's footer is there, and comes before the JSON
  const last = lastLine(output);
  const parsed = JSON.parse(last) as { check: string; ok: boolean; bytes: number };
  expect(parsed).toEqual({ check: 's3', ok: true, bytes: expect.any(Number) });
  expect(parsed.bytes).toBeGreaterThan(11 * 1024 * 1024);
  expect(output.indexOf('Recoverable time')).toBeLessThan(output.lastIndexOf(last));
}

describe('reviewer checks end with their JSON line', () => {
  // A reviewer pipes the output (`| tail -n 1`, or a harness reading the pipe to end of file).
  it('npx nx run artifacts:s3-check | tail: the last line is {"check":"s3","ok":true,"bytes":...}', async () => {
    const piped = await run('npx nx run artifacts:s3-check 2>&1 | tail -n 12');
    expect(piped.code).toBe(0);
    expectS3Result(piped.output);
  }, 90_000);

  it('resultLine takes only a JSON object naming its check', () => {
    expect(resultLine('{"check":"openai","max_logp_diff":0.0001}')).toBe('{"check":"openai","max_logp_diff":0.0001}');
    expect(resultLine('{"ok":true}')).toBeNull();
    expect(resultLine('[1,2]')).toBeNull();
    expect(resultLine('  Recoverable time:  <1ms')).toBeNull();
    expect(lastLine('a\n{"check":"s3"}\n\n  \n')).toBe('{"check":"s3"}');
    expect(withoutAnsi('\u001b[32mSuccessfully ran target \u001b[1ms3-check\u001b[22m\u001b[39m')).toBe('Successfully ran target s3-check');
  });
});
