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
  checkDestination,
  fileUri,
  maxJsonlLineBytes,
  readJsonl,
  sha256File,
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

  // tools/fuzz: these output_uri values ended Generate and JudgePairs with INTERNAL (a directory only at the rename,
  // after all the work); a device would have been replaced by the rename.
  it('refuses, before writing anything, a destination that cannot be written, as invalid-uri', async () => {
    const file = path.join(dir, 'file.txt');
    fs.writeFileSync(file, 'x');
    const refused = async (dest: string) => {
      const checked = await checkDestination(dest).catch((e) => e);
      const opened = await AtomicFileWriter.open(dest).catch((e) => e);
      expect([checked.kind, opened.kind]).toEqual(['invalid-uri', 'invalid-uri']);
      return checked.message as string;
    };
    expect(await refused(dir)).toBe(`${dir} is a directory; name the file to write`);
    expect(await refused(path.join(dir, 'a\0b'))).toBe('the path contains a NUL character');
    expect(await refused(path.join(dir, 'n'.repeat(240)))).toBe('a name in the path is 240 bytes long; at most 223 are written');
    expect(await refused(path.join(dir, 'd/'.repeat(3000), 'x'))).toMatch(/^the path is \d+ bytes long; at most 4063 are written$/);
    expect(await refused(path.join(file, 'sub', 'out.txt'))).toBe(`${file} is not a directory`);
    expect(await refused('/dev/null')).toBe('/dev/null is not a regular file (a device, FIFO or socket is not replaced)');
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['file.txt']);
    expect(await checkDestination(path.join(dir, 'new', 'out.txt'))).toBe(path.join(dir, 'new', 'out.txt'));
  });

  // tools/fuzz: /proc/self/mem is a regular file whose read fails with EIO: that was an INTERNAL error.
  it('reports a file that cannot be read as a format error, hashed or read as JSONL', async () => {
    await expect(sha256File('/proc/self/mem')).rejects.toMatchObject({ kind: 'format', message: '/proc/self/mem: cannot be read (EIO)' });
    await expect(sha256File(path.join(dir, 'missing'))).rejects.toMatchObject({ kind: 'not-found' });
    const read = async () => {
      for await (const _ of readJsonl('/proc/self/mem'));
    };
    await expect(read()).rejects.toMatchObject({ kind: 'format', message: '/proc/self/mem: cannot be read (EIO)' });
  });

  it('replaces an existing file on commit', async () => {
    const dest = path.join(dir, 'out.txt');
    await writeFileAtomic(dest, 'old');
    const info = await writeFileAtomic(dest, 'new');
    expect(fs.readFileSync(dest, 'utf8')).toBe('new');
    expect(info.sha256).toBe(sha('new'));
  });

  it("with existing 'keep', never replaces a file: other bytes there are an 'exists' error, the same bytes a retry done", async () => {
    const dest = path.join(dir, 'out.jsonl');
    // Nothing there: written as usual, no temporary file left.
    expect((await writeFileAtomic(dest, 'first\n', { existing: 'keep' })).sha256).toBe(sha('first\n'));
    // The same bytes again (a retried call whose first try wrote them): succeeds, the file as it was.
    const again = await writeFileAtomic(dest, 'first\n', { existing: 'keep' });
    expect([again.sha256, again.path, fs.readFileSync(dest, 'utf8')]).toEqual([sha('first\n'), dest, 'first\n']);
    // Other bytes: refused at commit, naming the file and both hashes; the file untouched.
    const writer = await JsonlWriter.open(dest, { existing: 'keep' });
    await writer.append({ other: true });
    const refused = await writer.commit().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ArtifactError);
    expect((refused as ArtifactError).kind).toBe('exists');
    expect((refused as ArtifactError).message).toBe(
      `${dest} already exists with other content (sha256 ${sha('first\n')}, this write's ${sha('{"other":true}\n')}); it is not replaced`,
    );
    expect(fs.readFileSync(dest, 'utf8')).toBe('first\n');
    expect(fs.readdirSync(dir)).toEqual(['out.jsonl']);
  });

  it("with existing 'keep', one of two writers racing to the same destination wins and the other is refused", async () => {
    const dest = path.join(dir, 'race.txt');
    const [a, b] = await Promise.all([AtomicFileWriter.open(dest, { existing: 'keep' }), AtomicFileWriter.open(dest, { existing: 'keep' })]);
    await a.write('from a');
    await b.write('from b');
    const results = await Promise.allSettled([a.commit(), b.commit()]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const winner = results[0].status === 'fulfilled' ? 'from a' : 'from b';
    expect(fs.readFileSync(dest, 'utf8')).toBe(winner);
    expect(fs.readdirSync(dir)).toEqual(['race.txt']);
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

  it('reads lines across read chunks, CRLF endings and a last line without a newline', async () => {
    const p = path.join(dir, 'big.jsonl');
    const long = 'x'.repeat(3 << 20); // spans several 1 MiB reads
    fs.writeFileSync(p, `{"a":"${long}"}\r\n\n{"b":"é"}`);
    const records = [];
    for await (const record of readJsonl(p)) records.push(record);
    expect(records).toEqual([{ line: 1, value: { a: long } }, { line: 3, value: { b: 'é' } }]);
  });

  // Issue 12: an uncapped line (prompt_set.uri=/dev/zero, a 600 MB file without a newline) crashed the services,
  // and parse errors quoted the first characters of any file (/etc/passwd).
  it('refuses a line over the cap and a path that is not a regular file, quoting no content', async () => {
    const read = async (p: string, cap?: number) => {
      for await (const _ of readJsonl(p, cap));
    };
    const p = path.join(dir, 'long.jsonl');
    fs.writeFileSync(p, `{"a":1}\n{"b":"${'y'.repeat(5000)}"}\n`);
    await expect(read(p, 4096)).rejects.toThrow(`${p}:2: line longer than 4096 bytes (JSONL_MAX_LINE_BYTES)`);
    await expect(read(p, 8192)).resolves.toBeUndefined();
    await expect(read('/dev/zero')).rejects.toThrow('/dev/zero: not a regular file');
    await expect(read(dir)).rejects.toMatchObject({ kind: 'format', message: `${dir}: not a regular file` });
    const secret = path.join(dir, 'passwd');
    fs.writeFileSync(secret, 'root:x:0:0:root:/root:/bin/bash\n');
    const error = await read(secret).catch((e: Error) => e);
    expect(String(error)).toContain(`${secret}:1: not valid JSON`);
    expect(String(error)).not.toContain('root');
  });

  it('takes its cap from JSONL_MAX_LINE_BYTES, else 16 MiB', () => {
    expect(maxJsonlLineBytes({})).toBe(16 * 1024 * 1024);
    expect(maxJsonlLineBytes({ JSONL_MAX_LINE_BYTES: '1024' })).toBe(1024);
    expect(maxJsonlLineBytes({ JSONL_MAX_LINE_BYTES: 'lots' })).toBe(16 * 1024 * 1024);
  });
});

describe('verifyArtifact', () => {
  it('checks a file against its sha256', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'abc');
    await expect(verifyArtifact(file, sha('abc'))).resolves.toBeUndefined();
    await expect(verifyArtifact(file, '')).resolves.toBeUndefined();
    await expect(verifyArtifact(file, sha('abd'))).rejects.toMatchObject({ kind: 'mismatch', message: `sha256 of ${file} is not ${sha('abd')}` });
    // Issue 12: the message used to quote the actual digest (of any readable file), and a device was hashed forever.
    await expect(verifyArtifact('/dev/zero', sha('abd'))).rejects.toMatchObject({ kind: 'format', message: '/dev/zero: not a regular file or directory' });
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
