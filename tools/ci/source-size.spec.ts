import * as fs from 'node:fs';
import * as path from 'node:path';

/** The layout rule (README, Layout): no source file over 400 lines under services/x/src, libs/x/src or clients/x/src. */
const ROOT = path.resolve(__dirname, '../..');
const LIMIT = 400;
const SKIPPED = new Set(['node_modules', 'gen', '_gen', '__pycache__', 'dist']);

function sources(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return SKIPPED.has(entry.name) ? [] : sources(full);
    return /\.(ts|py)$/.test(entry.name) ? [full] : [];
  });
}

describe('source file size', () => {
  it(`keeps every source file under services/*/src, libs/*/src and clients/*/src at ${LIMIT} lines or fewer`, () => {
    const files = ['services', 'libs', 'clients'].flatMap((group) =>
      fs.readdirSync(path.join(ROOT, group)).flatMap((project) => sources(path.join(ROOT, group, project, 'src'))),
    );
    expect(files.length).toBeGreaterThan(100);
    const over = files
      .map((file) => ({ file: path.relative(ROOT, file), lines: fs.readFileSync(file, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > LIMIT);
    expect(over).toEqual([]);
  });
});
