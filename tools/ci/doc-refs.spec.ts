import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.join(__dirname, 'doc-refs.py');

/** Runs doc-refs.py with plain python3 (the script uses the standard library only) on a tree. */
function docRefs(mode: '--check' | '--rewrite', root: string): { status: number | null; stdout: string } {
  const run = spawnSync('python3', [SCRIPT, mode, root], { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout };
}

/** Writes files (path → content) under a fresh temporary directory, which is not a git work tree. */
function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'doc-refs-'));
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), content);
  }
  return root;
}

const DOCS = {
  'docs/algorithm.md': '# The algorithm\n\n## 1. DPO\n\n## 4. The adversary\n\n### 4.2 Certificate\n',
  'docs/dro.md': '# Derivation\n\n## 2. Exact\n\n### 2.2 Three routes\n\nSee [the algorithm](algorithm.md).\n',
  'README.md': '# project\n',
};

describe('doc-refs.py --check', () => {
  let root: string;
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('passes a tree whose references all exist', () => {
    root = tree({
      ...DOCS,
      'services/a/src/good.ts': [
        '// docs/algorithm.md §4, docs/algorithm.md §1-§4 and `docs/algorithm.md` §1, §4.2',
        '// docs/dro.md §2.2(c), docs/dro.md Lemma 1, README.md, the demo writes report.md',
        '// https://example.com/NOT-HERE.md is a URL, and SPA §9 is a paper',
      ].join('\n'),
    });
    expect(docRefs('--check', root)).toEqual({ status: 0, stdout: '' });
  });

  it('fails on a missing file or section and lists each as file:line', () => {
    root = tree({
      ...DOCS,
      'services/a/src/good.ts': '// docs/algorithm.md §4\n',
      'services/a/src/bad.py': [
        '"""Cites docs/algorithm.md §7 and docs/algorithm.md §1-§5."""',
        '# docs/missing.md, and ALGORITHM.md §4 (outside the repo), and ../shared/BENCHMARK.md',
      ].join('\n'),
      'docs/links.md': 'A link [from docs](docs/dro.md) is relative to docs/.\n',
    });
    const { status, stdout } = docRefs('--check', root);
    expect(status).toBe(1);
    expect(stdout.trim().split('\n')).toEqual([
      'docs/links.md:1: docs/dro.md: no such file in the repository',
      'services/a/src/bad.py:1: docs/algorithm.md §7: docs/algorithm.md has no section 7',
      'services/a/src/bad.py:1: docs/algorithm.md §5: docs/algorithm.md has no section 5',
      'services/a/src/bad.py:2: docs/missing.md: no such file in the repository',
      'services/a/src/bad.py:2: ALGORITHM.md: no such file in the repository',
      'services/a/src/bad.py:2: ../shared/BENCHMARK.md: no such file in the repository',
    ]);
  });
});

describe('doc-refs.py --rewrite', () => {
  it('moves the old citations to docs/, after which --check passes, and is idempotent', () => {
    const root = tree({
      ...DOCS,
      'docs/benchmark.md': '# Benchmark\n',
      'services/a/src/old.ts': '// ALGORITHM.md §4 (dro.md §2.2(c)); `ALGORITHM.md` §1\n// see ../shared/BENCHMARK.md\n',
    });
    try {
      expect(docRefs('--check', root).status).toBe(1);
      expect(docRefs('--rewrite', root).stdout).toContain('4 citations rewritten');
      expect(fs.readFileSync(path.join(root, 'services/a/src/old.ts'), 'utf8')).toBe(
        '// docs/algorithm.md §4 (docs/dro.md §2.2(c)); `docs/algorithm.md` §1\n// see docs/benchmark.md\n',
      );
      expect(fs.readFileSync(path.join(root, 'docs/dro.md'), 'utf8')).toBe(DOCS['docs/dro.md']);
      expect(docRefs('--check', root)).toEqual({ status: 0, stdout: '' });
      expect(docRefs('--rewrite', root).stdout).toContain('0 citations rewritten');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
