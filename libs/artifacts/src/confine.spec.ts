// Issue 12: output_uri wrote anywhere (absolute paths, ../, file://localhost/, a symlink inside the data dir), and
// reads and hash checks reached any file. Under ARTIFACT_ROOTS a path resolves, symbolic links and all, inside them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError, PermissionDeniedError } from '@alignment/errors';
import { artifactRootsFromEnv, confinePath, toLocalPath } from './index';

let dir: string;
let roots: ReturnType<typeof artifactRootsFromEnv>;
beforeEach(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'confine-')));
  for (const d of ['data/runs', 'models/m', 'outside']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.writeFileSync(path.join(dir, 'outside', 'secret'), 'root:x:0:0');
  fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'data', 'escape'));
  roots = artifactRootsFromEnv({ ARTIFACT_ROOTS: path.join(dir, 'data'), READ_ONLY_ROOTS: path.join(dir, 'models') });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const denied = (p: string, mode: 'read' | 'write') => {
  try {
    confinePath(toLocalPath(p), 'output_uri', mode, roots);
  } catch (error) {
    expect(error).toBeInstanceOf(PermissionDeniedError);
    return (error as Error).message;
  }
  return 'allowed';
};

describe('confinePath', () => {
  it('allows paths under the roots: reads under both, writes under ARTIFACT_ROOTS only', () => {
    expect(confinePath(path.join(dir, 'data/runs/r/new.jsonl'), 'output_uri', 'write', roots)).toBe(path.join(dir, 'data/runs/r/new.jsonl'));
    expect(confinePath(path.join(dir, 'models/m'), 'model.onnx.uri', 'read', roots)).toBe(path.join(dir, 'models/m'));
    expect(denied(path.join(dir, 'models/m/out.jsonl'), 'write')).toBe(
      'permission denied for output_uri: the path is outside the directories this service may write (ARTIFACT_ROOTS)',
    );
  });

  it.each([
    ['an absolute path elsewhere', () => '/etc/passwd'],
    ['a ../ escape', () => path.join(dir, 'data/runs/../../outside/secret')],
    ['file://localhost/', () => `file://localhost${path.join(dir, 'outside/secret')}`],
    ['a symlink inside the root pointing out', () => path.join(dir, 'data/escape/secret')],
    ['a file under such a symlink that does not exist yet', () => path.join(dir, 'data/escape/new/file.jsonl')],
    ['a path that does not exist at all', () => '/nonexistent/dir/file'],
  ])('refuses %s with one message, whether or not it exists', (_name, p) => {
    const message = 'permission denied for output_uri: the path is outside the directories this service may read (ARTIFACT_ROOTS or READ_ONLY_ROOTS)';
    expect(denied(p(), 'read')).toBe(message);
    expect(denied(p(), 'write')).toMatch(/may write \(ARTIFACT_ROOTS\)$/);
  });

  // tools/fuzz: a 1 MiB output_uri of "d/d/…" was resolved one component at a time, for minutes, blocking the service.
  it('refuses a path over PATH_MAX at once, as INVALID_ARGUMENT', () => {
    const started = Date.now();
    const long = path.join(dir, 'data', 'd/'.repeat(500_000), 'x');
    expect(() => confinePath(long, 'output_uri', 'write', roots)).toThrow(InvalidArgumentError);
    expect(() => confinePath(long, 'output_uri', 'write', roots)).toThrow(`invalid output_uri: the path is ${Buffer.byteLength(long)} bytes long; at most 4095 name a file`);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('confines nothing when ARTIFACT_ROOTS is unset', () => {
    expect(artifactRootsFromEnv({})).toBeUndefined();
    expect(confinePath('/etc/passwd', 'x', 'read', undefined)).toBe('/etc/passwd');
  });
});
