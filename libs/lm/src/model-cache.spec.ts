import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelCache } from './model-cache';

class Fake {
  released = false;
  constructor(readonly dir: string) {}
  async release() {
    this.released = true;
  }
}

let root: string;
const dirs: string[] = [];
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-'));
  for (const name of ['a', 'b', 'c']) {
    const dir = path.join(root, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'model.onnx'), name);
    dirs.push(dir);
  }
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('ModelCache', () => {
  it('shares one load between concurrent requests and keeps at most `capacity` unused models', async () => {
    const loads: string[] = [];
    const cache = new ModelCache(async (dir) => {
      loads.push(dir);
      return new Fake(dir);
    }, 2);
    const [a1, a2] = await Promise.all([cache.acquire(dirs[0]), cache.acquire(dirs[0])]);
    expect(a1.value).toBe(a2.value);
    const b = await cache.acquire(dirs[1]);
    const c = await cache.acquire(dirs[2]);
    // Three models in use: none is evicted while held.
    expect(cache.size).toBe(3);
    a1.release();
    a2.release();
    expect(cache.size).toBe(2);
    await new Promise(setImmediate); // eviction releases in the background
    expect(a1.value.released).toBe(true);
    b.release();
    c.release();
    expect(loads).toEqual([dirs[0], dirs[1], dirs[2]]);
    await cache.clear();
    expect(b.value.released && c.value.released).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('reloads a directory whose model.onnx changed, and does not cache a failed load', async () => {
    let fail = true;
    const cache = new ModelCache(async (dir) => {
      if (fail) throw new Error('broken');
      return new Fake(dir);
    });
    await expect(cache.acquire(dirs[0])).rejects.toThrow('broken');
    fail = false;
    const first = await cache.acquire(dirs[0]);
    first.release();
    fs.writeFileSync(path.join(dirs[0], 'model.onnx'), 'rewritten, longer');
    const second = await cache.acquire(dirs[0]);
    expect(second.value).not.toBe(first.value);
    second.release();
  });

  it('verifies a model once per expected sha256, before loading it', async () => {
    let loads = 0;
    const cache = new ModelCache(async (dir) => {
      loads += 1;
      return new Fake(dir);
    });
    const verified: string[] = [];
    const check = (sha256: string) => ({ sha256, verify: async () => void verified.push(sha256) });
    (await cache.acquire(dirs[1], check('aa'))).release();
    (await cache.acquire(dirs[1], check('aa'))).release();
    await expect(cache.acquire(dirs[1], { sha256: 'bb', verify: async () => Promise.reject(new Error('mismatch')) })).rejects.toThrow('mismatch');
    expect(verified).toEqual(['aa']);
    expect(loads).toBe(1);
  });

  it('keeps variants of one directory (a model on different servers) apart and passes the variant to load', async () => {
    const loads: string[] = [];
    const cache = new ModelCache<Fake, string>(async (dir, variant) => {
      loads.push(`${path.basename(dir)}@${variant ?? 'local'}`);
      return new Fake(dir);
    }, 4);
    const leases = [
      await cache.acquire(dirs[0]),
      await cache.acquire(dirs[0], undefined, { key: 'http://a/v1', value: 'a' }),
      await cache.acquire(dirs[0], undefined, { key: 'http://b/v1', value: 'b' }),
      await cache.acquire(dirs[0], undefined, { key: 'http://a/v1', value: 'a' }),
    ];
    expect(loads).toEqual(['a@local', 'a@a', 'a@b']);
    expect(leases[3].value).toBe(leases[1].value);
    leases.forEach((l) => l.release());
    await cache.clear();
  });
});
