import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableCores, cgroupCpuLimit, parseCfsQuota, parseCpuMax } from './cpu-cores';
import { sessionOptions } from './causal-lm';

describe('cores from the cgroup quota (LM_THREADS default)', () => {
  it('parses cgroup v2 cpu.max', () => {
    expect(parseCpuMax('150000 100000\n')).toBe(1.5);
    expect(parseCpuMax('200000 100000')).toBe(2);
    expect(parseCpuMax('max 100000\n')).toBeUndefined();
    expect(parseCpuMax('')).toBeUndefined();
    expect(parseCpuMax('garbage 100000')).toBeUndefined();
  });

  it('parses cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us', () => {
    expect(parseCfsQuota('250000\n', '100000\n')).toBe(2.5);
    expect(parseCfsQuota('-1\n', '100000\n')).toBeUndefined();
    expect(parseCfsQuota('50000', '0')).toBeUndefined();
    expect(parseCfsQuota('x', '100000')).toBeUndefined();
  });

  it('reads v2 first, else v1, and caps the parallelism by the quota rounded up', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgroup-'));
    const v1 = path.join(dir, 'cpu');
    fs.mkdirSync(v1);
    fs.writeFileSync(path.join(v1, 'cpu.cfs_quota_us'), '150000\n');
    fs.writeFileSync(path.join(v1, 'cpu.cfs_period_us'), '100000\n');
    const paths = { cpuMax: path.join(dir, 'cpu.max'), v1Directories: [path.join(dir, 'absent'), v1] };
    expect(cgroupCpuLimit(paths)).toBe(1.5);
    expect(availableCores(paths, 16)).toBe(2);
    fs.writeFileSync(paths.cpuMax, '300000 100000\n');
    expect(cgroupCpuLimit(paths)).toBe(3);
    expect(availableCores(paths, 16)).toBe(3);
    expect(availableCores(paths, 2)).toBe(2);
    fs.writeFileSync(paths.cpuMax, 'max 100000\n');
    expect(cgroupCpuLimit(paths)).toBe(1.5); // v2 without a quota: v1 still applies
    const none = { cpuMax: path.join(dir, 'absent'), v1Directories: [] };
    expect(cgroupCpuLimit(none)).toBeUndefined();
    expect(availableCores(none, 5)).toBe(5);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sizes onnxruntime threads from LM_THREADS, else from the available cores', () => {
    const saved = process.env.LM_THREADS;
    try {
      process.env.LM_THREADS = '3';
      expect(sessionOptions().intraOpNumThreads).toBe(3);
      delete process.env.LM_THREADS;
      expect(sessionOptions().intraOpNumThreads).toBe(availableCores());
      expect(sessionOptions({ threads: 1 }).intraOpNumThreads).toBe(1);
    } finally {
      if (saved === undefined) delete process.env.LM_THREADS;
      else process.env.LM_THREADS = saved;
    }
  });
});
