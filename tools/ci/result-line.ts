// Runs a reviewer check (`npx nx run trainer:distributed-check`, `artifacts:s3-check`, `generator:openai-check`) so
// that its JSON result is the last line a reviewer sees. Nx 23 prints its own footer after every task ("Successfully
// ran target", then a performance report: run duration, cache, critical path, recoverable time), unconditionally:
// no nx.json, project.json, output style or environment switch turns the report off (run-command.js flushes it in a
// `finally`). So this wrapper streams the check's output through unchanged, and when the check's last line is a JSON
// object with a "check" key and it runs under an nx CLI, it hands that line to a detached writer holding the nx
// CLI's own stdout (through /proc, so Linux only), which prints it again once nx has exited, after the footer:
//  - a pipe (`npx nx run artifacts:s3-check | tail -n 1`, a harness reading to end of file): always last, since the
//    reader sees end of file only once the writer has written and closed it;
//  - a terminal: last, though a shell may print its prompt first (the writer runs just after nx exits);
//  - a file redirect read the moment the shell returns: may not be there yet; a socket (node's child_process
//    pipes) cannot be reopened through /proc, so nothing is repeated and the JSON stays just above the footer.
// Outside nx it only runs the check.
//
// Usage: tsx tools/ci/result-line.ts -- <shell command>      (exit status: the check's)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

/** The last non-empty line of text, trimmed. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.length ? lines[lines.length - 1] : '';
}

/** The line when it is a check's result (a JSON object naming its check), else null. */
export function resultLine(line: string): string | null {
  try {
    const parsed: unknown = JSON.parse(line);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) && 'check' in parsed ? line : null;
  } catch {
    return null;
  }
}

function parentOf(pid: number): number | null {
  try {
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces or parentheses, so split after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 0 ? ppid : null;
  } catch {
    return null;
  }
}

const isNxCli = (pid: number): boolean => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => /(^|\/)nx(\/bin\/nx\.js)?$/.test(a));
  } catch {
    return false;
  }
};

/** The outermost ancestor that is the nx CLI (`node .../nx/bin/nx.js` or `.bin/nx`), or null when not under nx. */
export function nxCliPid(from = process.ppid): number | null {
  let found: number | null = null;
  for (let pid: number | null = from; pid !== null && pid > 1; pid = parentOf(pid)) if (isNxCli(pid)) found = pid;
  return found;
}

/**
 * The detached writer, plain JavaScript for `node -e` (a quick start: nx exits within milliseconds of its footer). Its
 * fd 1 is the nx CLI's stdout; argv: nx pid, the file offset at hand-over, the line. It writes the line once nx has
 * exited or, for a regular file, as soon as the footer shows past the offset (when it starts in time to see it).
 */
const WRITER = `
const fs = require('node:fs');
const [pid, offset, line] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
const isFile = fs.fstatSync(1).isFile();
const footer = () => {
  const size = fs.fstatSync(1).size;
  if (size <= offset) return false;
  const fd = fs.openSync('/proc/self/fd/1', 'r');
  const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
  try { fs.readSync(fd, buf, 0, buf.length, size - buf.length); } finally { fs.closeSync(fd); }
  return buf.toString('utf8').includes('Recoverable time:');
};
const deadline = Date.now() + 60000;
const tick = () => {
  if (alive() && !(isFile && footer()) && Date.now() < deadline) return setTimeout(tick, 2);
  fs.writeSync(1, line + '\\n');
};
tick();
`;

/** Hands the result line to a detached writer on the nx CLI's stdout; a no-op outside nx or where it cannot. */
function defer(line: string): void {
  const nx = process.env.NX_TASK_TARGET_PROJECT ? nxCliPid() : null;
  if (nx === null) return;
  let out: number;
  try {
    // Append: a redirect to a file must not be truncated. A socket (node's child_process pipes) cannot be opened
    // through /proc; then nothing is deferred and the JSON stays just above nx's footer.
    out = fs.openSync(`/proc/${nx}/fd/1`, 'a');
  } catch {
    return;
  }
  const offset = fs.fstatSync(out).isFile() ? fs.fstatSync(out).size : 0;
  const child = spawn(process.execPath, ['-e', WRITER, String(nx), String(offset), line], {
    detached: true,
    stdio: ['ignore', out, 'ignore'],
  });
  child.unref();
  fs.closeSync(out);
}

async function runCheck(command: string): Promise<number> {
  let tail = '';
  const child = spawn(command, { shell: true, stdio: ['inherit', 'pipe', 'inherit'] });
  child.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-65536);
  });
  const code = await new Promise<number>((resolve) => child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  const line = resultLine(lastLine(tail));
  if (line !== null) defer(line);
  return code;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === '--' && args.length > 1) {
    void runCheck(args.slice(1).join(' ')).then((code) => process.exit(code));
  } else {
    console.error('usage: tsx tools/ci/result-line.ts -- <command>');
    process.exit(2);
  }
}
