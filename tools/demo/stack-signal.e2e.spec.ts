import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePortBlock, isListening } from '@alignment/service-kit/testing';
import { defaultPorts, ROOT, SERVICE_NAMES } from './stack';

/**
 * A demo or a campaign stopped by a signal (Ctrl-C, SIGTERM) takes its stack with it: the stack runs in its own
 * process group, so without DemoStack's handlers its five services stayed up, holding the ports, and the next run
 * refused to start ("port … is already in use").
 */

it('stops the stack when the process that started it gets SIGTERM', async () => {
  const portBase = await freePortBlock(5);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-signal-'));
  const script = path.join(dir, 'start.ts');
  fs.writeFileSync(
    script,
    [
      `import { DemoStack, defaultPorts } from ${JSON.stringify(path.join(ROOT, 'tools/demo/stack'))};`,
      `const stack = new DemoStack(defaultPorts(${portBase}), ${JSON.stringify(path.join(dir, 'data'))}, ${JSON.stringify(path.join(dir, 'stack.log'))});`,
      `void stack.start().then(() => { process.stdout.write('started\\n'); setInterval(() => undefined, 1000); });`,
    ].join('\n'),
  );
  const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
    child.once('exit', (code) => reject(new Error(`the starter exited ${code} before the stack was up`)));
  });
  const ports = defaultPorts(portBase);
  expect(await isListening(ports.coordinator)).toBe(true);

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(143);
  const deadline = Date.now() + 30_000;
  let open = SERVICE_NAMES.map((name) => ports[name]);
  while (open.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    open = (await Promise.all(open.map(async (port) => ((await isListening(port)) ? port : -1)))).filter((p) => p >= 0);
  }
  expect(open).toEqual([]);
  fs.rmSync(dir, { recursive: true, force: true });
}, 180_000);
