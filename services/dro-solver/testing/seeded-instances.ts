/**
 * Seeded instance generators shared by the solver's tests and its benchmark. No Math.random: every instance
 * is reproducible from its seed.
 */

import type { Budget, DroProblem } from '../src/solver/types';

/** mulberry32: a small, fast 32-bit PRNG; plenty for generating test instances. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box–Muller) from a uniform source. */
export function normal(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** log σ(u), without overflow for either sign of u. */
export function logSigmoid(u: number): number {
  return u >= 0 ? -Math.log1p(Math.exp(-u)) : u - Math.log1p(Math.exp(u));
}

/**
 * log ξ for N synthetic DPO pairs: margins βh ~ N(1, 2²), a realistic mix of confidently right, uncertain and
 * mis-ranked pairs (ξ = σ(βh) spans roughly 0.005 to 0.999).
 */
export function seededLogXi(n: number, seed: number): Float64Array {
  const z = normal(mulberry32(seed));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logSigmoid(1 + 2 * z());
  return out;
}

export interface RandomInstanceOptions {
  /** Largest N drawn (N is uniform on 1..maxN). */
  maxN: number;
}

/**
 * A random problem that exercises the corners: tied ξ (repeated log ξ), samples below δ and above 1−δ
 * (clipped), zero and unequal weights, ε = 0, ρ budgets, and budgets past saturation.
 */
export function randomInstance(seed: number, { maxN }: RandomInstanceOptions): DroProblem {
  const rand = mulberry32(seed);
  const n = 1 + Math.floor(rand() * maxN);
  const delta = [0.01, 0.05, 0.001, 0.2][Math.floor(rand() * 4)] as number;
  const logXi: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = rand();
    if (i > 0 && u < 0.2) logXi.push(logXi[Math.floor(rand() * i)] as number); // tie
    else if (u < 0.3) logXi.push(Math.log(delta) - 1 - 5 * rand()); // below δ: clipped onto δ
    else if (u < 0.35) logXi.push(-1e-6 * rand()); // above 1 − δ: clipped onto it
    else logXi.push(Math.log(delta + (1 - 2 * delta) * rand()));
  }
  let weights: number[] | undefined;
  if (rand() < 0.5) {
    weights = logXi.map(() => (rand() < 0.15 ? 0 : 0.1 + 3 * rand()));
    if (!weights.some((w) => w > 0)) weights[0] = 1;
  }
  const b = rand();
  const budget: Budget =
    b < 0.1
      ? { kind: 'epsilon', value: 0 }
      : b < 0.2
        ? { kind: 'epsilon', value: 2 }
        : b < 0.5
          ? { kind: 'epsilon', value: 0.3 * rand() }
          : { kind: 'rho', value: rand() };
  return { logXi, weights, budget, delta };
}

/**
 * W1(P, Q) on the line as ∫ |F_P(x) − F_Q(x)| dx, from the two CDFs. It never looks at a transport plan, so
 * it checks a solver's reported cost independently.
 */
export function w1FromCdfs(p: Array<[number, number]>, q: Array<[number, number]>): number {
  const events = [...p.map(([x, m]): [number, number] => [x, m]), ...q.map(([x, m]): [number, number] => [x, -m])];
  events.sort((a, b) => a[0] - b[0]);
  let w1 = 0;
  let diff = 0; // F_P − F_Q just right of the current point
  for (let j = 0; j < events.length; j++) {
    const [x, dm] = events[j] as [number, number];
    diff += dm;
    const next = events[j + 1];
    if (next !== undefined) w1 += Math.abs(diff) * (next[0] - x);
  }
  return w1;
}
