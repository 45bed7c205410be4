import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The cores this process may use, for sizing onnxruntime's thread pool (issue 11 defect 3: on a shared machine one
 * thread per core of the host in every service oversubscribes it). The same rule as the trainer's
 * alignment_trainer/cpu_env.py available_cores: a cgroup v2 quota (cpu.max), else a cgroup v1 CFS quota
 * (cpu.cfs_quota_us / cpu.cfs_period_us), rounded up, capped by os.availableParallelism() (the affinity mask).
 */

/** Cores allowed by a cgroup v2 cpu.max ("150000 100000" = 1.5; "max 100000" = no quota), or undefined. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  return quotaCores(quota, period ?? '100000');
}

/** Cores allowed by a cgroup v1 CFS quota and period (cpu.cfs_quota_us -1 = no quota), or undefined. */
export function parseCfsQuota(quotaText: string, periodText: string): number | undefined {
  return quotaCores(quotaText.trim(), periodText.trim());
}

function quotaCores(quota: string, period: string): number | undefined {
  if (!/^-?\d+$/.test(quota) || !/^\d+$/.test(period)) return undefined;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : undefined;
}

/** Where the cgroup files are read from (tests point it at fixtures). */
export interface CgroupPaths {
  /** cgroup v2's cpu.max. */
  cpuMax: string;
  /** cgroup v1 cpu controller directories, tried in order. */
  v1Directories: readonly string[];
}

export const DEFAULT_CGROUP_PATHS: CgroupPaths = {
  cpuMax: '/sys/fs/cgroup/cpu.max',
  v1Directories: ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct'],
};

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup CPU quota in cores (v2, else v1), or undefined when there is none or no file. */
export function cgroupCpuLimit(paths: CgroupPaths = DEFAULT_CGROUP_PATHS): number | undefined {
  const v2 = read(paths.cpuMax);
  if (v2 !== undefined) {
    const limit = parseCpuMax(v2);
    if (limit !== undefined) return limit;
  }
  for (const directory of paths.v1Directories) {
    const quota = read(path.join(directory, 'cpu.cfs_quota_us'));
    const period = read(path.join(directory, 'cpu.cfs_period_us'));
    if (quota !== undefined && period !== undefined) return parseCfsQuota(quota, period);
  }
  return undefined;
}

/** Cores this process may use: os.availableParallelism() capped by the cgroup quota (rounded up), at least 1. */
export function availableCores(paths: CgroupPaths = DEFAULT_CGROUP_PATHS, parallelism = os.availableParallelism()): number {
  const limit = cgroupCpuLimit(paths);
  const cores = limit === undefined ? parallelism : Math.min(parallelism, Math.ceil(limit));
  return Math.max(1, cores);
}
