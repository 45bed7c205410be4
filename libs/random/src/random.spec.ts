import { Xoshiro128StarStar } from './index';

describe('Xoshiro128StarStar', () => {
  it('matches the reference xoshiro128** output for state {1, 2, 3, 4}', () => {
    // By hand from the algorithm: rotl(2 * 5, 7) * 9 = 11520; after one step s[1] = 0, so 0; then 5927040.
    const rng = new Xoshiro128StarStar([1, 2, 3, 4]);
    expect([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()]).toEqual([11520, 0, 5927040]);
  });

  it('replaces the all-zero fixed point and rejects a malformed state', () => {
    const zero = new Xoshiro128StarStar([0, 0, 0, 0]);
    expect(Array.from({ length: 8 }, () => zero.nextUint32()).some((v) => v !== 0)).toBe(true);
    expect(() => new Xoshiro128StarStar([1, 2, 3])).toThrow('4 state words');
  });

  it('draws unbiased integers and permutations', () => {
    const rng = new Xoshiro128StarStar([7, 7, 7, 7]);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[rng.int(3)] += 1;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
    expect(rng.permutation(10).sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(() => rng.int(0)).toThrow('int(n)');
  });
});
