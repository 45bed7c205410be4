import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { clipStrings, MAX_LOGGED_STRING } from './logger';

const root = path.resolve(__dirname, '../../..');

describe('log lines', () => {
  it('clip every long string, nested ones too, saying how much was cut', () => {
    const long = 'a'.repeat(MAX_LOGGED_STRING + 10);
    expect(clipStrings({ run_id: long, nested: [{ x: long }], n: 3 })).toEqual({
      run_id: `${'a'.repeat(MAX_LOGGED_STRING)}… (10 more characters)`,
      nested: [{ x: `${'a'.repeat(MAX_LOGGED_STRING)}… (10 more characters)` }],
      n: 3,
    });
    expect(clipStrings('short')).toBe('short');
  });

  // Issue 12: a 1 MiB run_id was echoed into a 1 MiB log line.
  it('stay a few KiB when a field or the message is a MiB', () => {
    const script = `
      const { createLogger } = require('./libs/service-kit/src/logger');
      const log = createLogger('clip-test');
      log.info({ run_id: 'x'.repeat(1 << 20) }, 'y'.repeat(1 << 20));`;
    const result = spawnSync(path.join(root, 'node_modules/.bin/tsx'), ['-e', script], { cwd: root, encoding: 'utf8' });
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0].length).toBeLessThan(3 * MAX_LOGGED_STRING);
    const line = JSON.parse(lines[0]);
    expect(line.run_id).toMatch(/… \(1044480 more characters\)$/);
    expect(line.msg).toMatch(/… \(1044480 more characters\)$/);
  }, 30_000);
});
