import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.join(__dirname, 'ts-import-cycles.py');

function check(root?: string): { status: number | null; stdout: string } {
  const run = spawnSync('python3', root ? [SCRIPT, root] : [SCRIPT], { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout };
}

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-cycles-'));
  const all = { 'tsconfig.base.json': JSON.stringify({ compilerOptions: { paths: { '@x/a': ['libs/a/src/index.ts'] } } }), ...files };
  for (const [file, content] of Object.entries(all)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), content);
  }
  return root;
}

describe('ts-import-cycles.py', () => {
  it('finds a cycle through a path alias and a type-only import, naming both files', () => {
    const root = tree({
      'libs/a/src/index.ts': "export { b } from './b';\n",
      'libs/a/src/b.ts': "import type { A } from '@x/a';\nexport const b = 1;\n",
      'services/s/src/main.ts': "import { b } from '@x/a';\nimport * as fs from 'node:fs';\n",
    });
    const run = check(root);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('import cycle: libs/a/src/b.ts <-> libs/a/src/index.ts');
    expect(run.stdout).toContain('3 TypeScript files, 1 import cycles');
  });

  it('passes an acyclic tree', () => {
    const root = tree({ 'libs/a/src/index.ts': "export { b } from './b';\n", 'libs/a/src/b.ts': 'export const b = 1;\n' });
    expect(check(root).status).toBe(0);
  });

  it('passes this repository', () => {
    const run = check();
    expect(run.stdout).toMatch(/ 0 import cycles/);
    expect(run.status).toBe(0);
  });
});
