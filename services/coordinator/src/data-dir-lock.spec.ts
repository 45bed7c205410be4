import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { DataDirLock, DataDirLockedError } from './data-dir-lock';

const root = path.resolve(__dirname, '../../..');
let dataDir: string;
beforeEach(() => (dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coordinator-lock-'))));
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

/** Tries the lock from another process, as a second coordinator would: its exit message. */
function tryFromAnotherProcess(): string {
  const script = `
    const { DataDirLock } = require('./services/coordinator/src/data-dir-lock');
    try { DataDirLock.acquire(process.argv[1]).release(); console.log('acquired'); } catch (e) { console.log(e.constructor.name + ': ' + e.message); }`;
  const result = spawnSync(path.join(root, 'node_modules/.bin/tsx'), ['-e', script, dataDir], { cwd: root, encoding: 'utf8' });
  return result.stdout.trim() || result.stderr;
}

describe('DataDirLock', () => {
  it('admits one holder at a time, in this process and from another, and names the holder', () => {
    const lock = DataDirLock.acquire(dataDir);
    expect(() => DataDirLock.acquire(dataDir)).toThrow(DataDirLockedError);
    expect(() => DataDirLock.acquire(dataDir)).toThrow(`another coordinator serves ${dataDir} (pid ${process.pid} on ${os.hostname()}, since `);
    expect(tryFromAnotherProcess()).toMatch(new RegExp(`^DataDirLockedError: another coordinator serves ${dataDir} \\(pid ${process.pid} `));
    lock.release();
    expect(tryFromAnotherProcess()).toBe('acquired');
    DataDirLock.acquire(dataDir).release();
  }, 60_000);

  it('is released by the death of its holder, even by SIGKILL', () => {
    const script = `require('./services/coordinator/src/data-dir-lock').DataDirLock.acquire(process.argv[1]); process.kill(process.pid, 'SIGKILL');`;
    const killed = spawnSync(path.join(root, 'node_modules/.bin/tsx'), ['-e', script, dataDir], { cwd: root, encoding: 'utf8' });
    expect(killed.signal === 'SIGKILL' || killed.status !== 0).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'coordinator', 'coordinator.lock.json'))).toBe(true); // left behind by the dead holder
    DataDirLock.acquire(dataDir).release(); // yet free
  }, 60_000);
});
