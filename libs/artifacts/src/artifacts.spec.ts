import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ArtifactError,
  ArtifactStore,
  AtomicFileWriter,
  JsonlWriter,
  MANIFEST_FILE,
  fileUri,
  readJsonl,
  toLocalPath,
  verifyArtifact,
  writeFileAtomic,
} from './index';

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'artifacts-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('URIs', () => {
  it('accepts file:// URIs and bare paths, and refuses other schemes', () => {
    expect(toLocalPath('file:///tmp/a%20b.jsonl')).toBe('/tmp/a b.jsonl');
    expect(toLocalPath('/tmp/x')).toBe('/tmp/x');
    expect(toLocalPath('rel/x')).toBe(path.resolve('rel/x'));
    expect(toLocalPath(fileUri('/tmp/a b'))).toBe('/tmp/a b');
    expect(() => toLocalPath('s3://bucket/key')).toThrow(/s3:\/\/ URIs are not supported/);
    expect(() => toLocalPath('  ')).toThrow(ArtifactError);
  });
});

describe('atomic writes', () => {
  it('shows nothing under the final name until commit, then the whole file with its sha256', async () => {
    const dest = path.join(dir, 'sub', 'out.txt');
    const writer = await AtomicFileWriter.open(dest);
    await writer.write('hello ');
    await writer.write(Buffer.from('world'));
    expect(fs.existsSync(dest)).toBe(false);
    const info = await writer.commit();
    expect(fs.readFileSync(dest, 'utf8')).toBe('hello world');
    expect(info).toEqual({ uri: fileUri(dest), path: dest, sha256: sha('hello world'), sizeBytes: 11 });
    expect(fs.readdirSync(path.dirname(dest))).toEqual(['out.txt']);
  });

  it('leaves an existing file untouched when aborted, and removes the temporary file', async () => {
    const dest = path.join(dir, 'out.txt');
    await writeFileAtomic(dest, 'old');
    const writer = await AtomicFileWriter.open(dest);
    await writer.write('x'.repeat(200_000)); // past the write block: bytes reached the temp file
    await writer.abort();
    await writer.abort();
    expect(fs.readFileSync(dest, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir)).toEqual(['out.txt']);
  });

  it('replaces an existing file on commit', async () => {
    const dest = path.join(dir, 'out.txt');
    await writeFileAtomic(dest, 'old');
    const info = await writeFileAtomic(dest, 'new');
    expect(fs.readFileSync(dest, 'utf8')).toBe('new');
    expect(info.sha256).toBe(sha('new'));
  });
});

describe('JSONL', () => {
  it('round-trips objects with line numbers, skipping blank lines', async () => {
    const dest = path.join(dir, 'a.jsonl');
    const writer = await JsonlWriter.open(dest);
    await writer.append({ prompt: 'x', n: 1 });
    await writer.append({ prompt: 'ü\n"' });
    const info = await writer.commit();
    expect(info.sha256).toBe(sha(fs.readFileSync(dest)));
    fs.appendFileSync(dest, '\n{"prompt":"z"}\n');
    const records = [];
    for await (const record of readJsonl(dest)) records.push(record);
    expect(records).toEqual([
      { line: 1, value: { prompt: 'x', n: 1 } },
      { line: 2, value: { prompt: 'ü\n"' } },
      { line: 4, value: { prompt: 'z' } },
    ]);
  });

  it('names the file and line of a line that is not JSON, and reports a missing file as not-found', async () => {
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"a":1}\n{oops\n');
    const read = async (p: string) => {
      for await (const _ of readJsonl(p));
    };
    await expect(read(bad)).rejects.toThrow(`${bad}:2: not valid JSON`);
    await expect(read(path.join(dir, 'missing.jsonl'))).rejects.toMatchObject({ kind: 'not-found' });
  });
});

describe('verifyArtifact', () => {
  it('checks a file against its sha256', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'abc');
    await expect(verifyArtifact(file, sha('abc'))).resolves.toBeUndefined();
    await expect(verifyArtifact(file, '')).resolves.toBeUndefined();
    await expect(verifyArtifact(file, sha('abd'))).rejects.toMatchObject({ kind: 'mismatch' });
    await expect(verifyArtifact(file, 'nothex')).rejects.toMatchObject({ kind: 'mismatch' });
    await expect(verifyArtifact(path.join(dir, 'nope'), '')).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('checks a directory by its manifest and every file the manifest lists (the trainer export layout)', async () => {
    const model = path.join(dir, 'onnx');
    fs.mkdirSync(model);
    fs.writeFileSync(path.join(model, 'model.onnx'), 'weights');
    const manifest = JSON.stringify({
      version: 1,
      files: [{ path: 'model.onnx', sha256: sha('weights'), size_bytes: 7 }],
      total_size_bytes: 7,
    });
    fs.writeFileSync(path.join(model, MANIFEST_FILE), manifest);
    await expect(verifyArtifact(model, sha(manifest))).resolves.toBeUndefined();
    fs.writeFileSync(path.join(model, 'model.onnx'), 'weightz');
    await expect(verifyArtifact(model, sha(manifest))).rejects.toThrow(/model.onnx: content differs from the manifest/);
    fs.rmSync(path.join(model, 'model.onnx'));
    await expect(verifyArtifact(model, sha(manifest))).rejects.toThrow(/model.onnx: missing/);
  });

  it('refuses a manifest that does not match formats.proto ArtifactManifest, naming the field', async () => {
    const model = path.join(dir, 'onnx');
    fs.mkdirSync(model);
    fs.writeFileSync(path.join(model, 'model.onnx'), 'weights');
    const manifest = JSON.stringify({ files: [{ path: 'model.onnx', sha256: sha('weights'), size_bytes: '7' }], total_size_bytes: 7, version: 1 });
    fs.writeFileSync(path.join(model, MANIFEST_FILE), manifest);
    await expect(verifyArtifact(model, sha(manifest))).rejects.toMatchObject({
      kind: 'format',
      message: expect.stringContaining('files[0].size_bytes: must be an integer, got "7" (ArtifactManifest)'),
    });
  });
});

describe('ArtifactStore', () => {
  it('allocates distinct, time-sortable paths under root/kind', () => {
    const store = new ArtifactStore(dir);
    const a = store.allocate('responses', 'jsonl');
    const b = store.allocate('responses', '.jsonl');
    expect(a).not.toBe(b);
    expect(path.dirname(a)).toBe(path.join(dir, 'responses'));
    expect(a).toMatch(/\/\d{8}T\d{6}Z-[0-9a-f]{12}\.jsonl$/);
    expect(() => store.allocate('../x', 'jsonl')).toThrow();
  });
});
