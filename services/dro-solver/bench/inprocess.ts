// In-process timings of the DRO solver (no gRPC), used by bench.ts.
import { solveExact, solveLp } from '../src/solver';
import { seededLogXi } from '../testing/seeded-instances';

export { seededLogXi };

/** The benchmark instance: ξ = σ(βh) for βh ~ N(1, 2²), δ = 0.01, ρ = 0.2 (a typical training setting). */
function instance(n: number) {
  return { logXi: seededLogXi(n, 7), delta: 0.01, budget: { kind: 'rho' as const, value: 0.2 } };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Times `solveExact` on a seeded instance of size n: one warm-up run, then `reps` timed runs. */
export function benchInProcess(n: number, reps: number): { medianMs: number; p99Ms: number } {
  const problem = instance(n);
  solveExact(problem);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    solveExact(problem);
    times.push(msSince(t0));
  }
  times.sort((a, b) => a - b);
  return { medianMs: quantile(times, 0.5), p99Ms: quantile(times, 0.99) };
}

/**
 * Median times of the exact solver and of the HiGHS reference LP (Eq. 2-4 with chord pieces) on the same
 * instance of size n (≤ LP_MAX_SAMPLES). The LP has 3N(N+1) columns: at N = 300 one solve takes tens of
 * seconds, so keep `reps` small there. The exact solver is timed over many runs per sample because one run
 * is far below the timer's useful resolution.
 */
export async function benchLpVsExact(
  n = 300,
  reps = 5,
): Promise<{ lpMedianMs: number; exactMedianMs: number }> {
  const problem = instance(n);
  await solveLp(instance(3)); // loads and compiles the WebAssembly module outside the timings
  const lpTimes: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    await solveLp(problem);
    lpTimes.push(msSince(t0));
  }
  const inner = 1000;
  for (let r = 0; r < inner; r++) solveExact(problem);
  const exactTimes: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < inner; j++) solveExact(problem);
    exactTimes.push(msSince(t0) / inner);
  }
  lpTimes.sort((a, b) => a - b);
  exactTimes.sort((a, b) => a - b);
  return { lpMedianMs: quantile(lpTimes, 0.5), exactMedianMs: quantile(exactTimes, 0.5) };
}
