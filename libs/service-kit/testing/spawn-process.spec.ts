// spawnProcess().stop: a process that ignores the signal it is sent is killed after the grace period, so a test's
// teardown ends with an answer (a null exit code) instead of hanging past its hook timeout.
import { spawnProcess } from './index';

const node = process.execPath;

test('stop resolves with the exit code of a process that exits on SIGTERM', async () => {
  const child = spawnProcess(node, ['-e', "process.on('SIGTERM', () => process.exit(3)); setInterval(() => {}, 1000); console.log('up')"], {});
  await new Promise((resolve) => child.child.stdout!.once('data', resolve));
  expect(await child.stop('SIGTERM', 10_000)).toBe(3);
});

test('stop sends SIGKILL to a process still running after killAfterMs', async () => {
  const child = spawnProcess(node, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('up')"], {});
  await new Promise((resolve) => child.child.stdout!.once('data', resolve));
  const started = Date.now();
  expect(await child.stop('SIGTERM', 300)).toBeNull();
  expect(child.child.signalCode).toBe('SIGKILL');
  expect(Date.now() - started).toBeLessThan(10_000);
});
