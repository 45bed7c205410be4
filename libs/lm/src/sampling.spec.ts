import { requestSeed, Rng, sampleFromProbs, sampleRng } from './sampling';

const probs = Float32Array.from([0.05, 0.4, 0.1, 0.3, 0.15]);

function frequencies(topK: number, topP: number, draws = 40_000): number[] {
  const rng = new Rng([42]);
  const counts = new Array(probs.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampleFromProbs(probs, 0, probs.length, topK, topP, rng.nextDouble())] += 1;
  return counts.map((c) => c / draws);
}

describe('sampleFromProbs', () => {
  it('draws in proportion to the probabilities without filters', () => {
    frequencies(0, 1).forEach((f, i) => expect(f).toBeCloseTo(probs[i], 2));
  });

  it('top_k keeps the k likeliest tokens, renormalised', () => {
    const f = frequencies(2, 1);
    expect(f[1]).toBeCloseTo(0.4 / 0.7, 2);
    expect(f[3]).toBeCloseTo(0.3 / 0.7, 2);
    expect(f[0] + f[2] + f[4]).toBe(0);
  });

  it('top_p keeps the likeliest tokens until their mass reaches top_p (as transformers’ TopPLogitsWarper)', () => {
    // Sorted: 0.4, 0.3, 0.15, 0.1, 0.05. top_p 0.69 is reached by {0.4, 0.3}; 0.71 needs 0.15 too.
    const f = frequencies(0, 0.69);
    expect(f[1]).toBeCloseTo(0.4 / 0.7, 2);
    expect(f[0] + f[2] + f[4]).toBe(0);
    const g = frequencies(0, 0.71);
    expect(g[4]).toBeCloseTo(0.15 / 0.85, 2);
    expect(g[0] + g[2]).toBe(0);
  });

  it('applies top_k before top_p (top_p measured within what top_k kept)', () => {
    // top_k 3 keeps 0.4, 0.3, 0.15 (mass 0.85); top_p 0.5 of that is 0.425 > 0.4, so two tokens stay.
    const f = frequencies(3, 0.5);
    expect(f[1]).toBeCloseTo(0.4 / 0.7, 2);
    expect(f[4]).toBe(0);
  });

  it('reads one row of a [rows, vocab] buffer', () => {
    const rows = Float32Array.from([1, 0, 0, 0, 0, 0, 0, 1]);
    expect(sampleFromProbs(rows, 4, 4, 0, 1, 0.5)).toBe(3);
    expect(sampleFromProbs(rows, 0, 4, 2, 0.9, 0.99)).toBe(0);
  });
});

describe('random streams', () => {
  it('are reproducible and differ by seed, prompt index and sample index', () => {
    const draw = (rng: Rng) => Array.from({ length: 4 }, () => rng.nextDouble());
    const a = draw(sampleRng(7n, 3, 0));
    expect(draw(sampleRng(7n, 3, 0))).toEqual(a);
    expect(draw(sampleRng(8n, 3, 0))).not.toEqual(a);
    expect(draw(sampleRng(7n, 4, 0))).not.toEqual(a);
    expect(draw(sampleRng(7n, 3, 1))).not.toEqual(a);
    expect(draw(sampleRng(7n | (1n << 40n), 3, 0))).not.toEqual(a);
    for (const v of a) expect(v >= 0 && v < 1).toBe(true);
  });

  it('are uniform enough for sampling (mean and spread of 10^5 draws)', () => {
    const rng = sampleRng(1n, 0, 0);
    let sum = 0;
    let sumSq = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const u = rng.nextDouble();
      sum += u;
      sumSq += u * u;
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(sumSq / n - (sum / n) ** 2).toBeCloseTo(1 / 12, 2);
  });

  it('give each prompt of an OpenAI-backend call its own 53-bit request seed (requestSeed), fixed by seed and index', () => {
    const seeds = [0, 1, 2, 2 ** 32].map((i) => requestSeed(7n, i));
    expect(new Set(seeds).size).toBe(4);
    for (const s of seeds) expect(Number.isSafeInteger(s) && s >= 0).toBe(true);
    expect(requestSeed(7n, 1)).toBe(seeds[1]);
    expect(requestSeed(8n, 1)).not.toBe(seeds[1]);
  });
});
