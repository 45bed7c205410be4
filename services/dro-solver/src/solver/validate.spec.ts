import {
  InvalidProblemError,
  LP_MAX_SAMPLES,
  solveDual,
  solveExact,
  solveLp,
  solveNoSplitting,
  validateProblem,
  type DroProblem,
} from './index';

const valid: DroProblem = { logXi: [-0.1, -2, -0.7], delta: 0.01, budget: { kind: 'epsilon', value: 0.05 } };

function rejection(p: unknown): InvalidProblemError {
  try {
    validateProblem(p as DroProblem);
  } catch (e) {
    if (e instanceof InvalidProblemError) return e;
    throw e;
  }
  throw new Error('expected an InvalidProblemError, but the problem was accepted');
}

describe('validateProblem', () => {
  const cases: Array<[string, Partial<Record<keyof DroProblem, unknown>>, string, RegExp]> = [
    ['empty log_xi', { logXi: [] }, 'log_xi', /at least one/],
    ['NaN in log_xi', { logXi: [-1, NaN] }, 'log_xi', /log_xi\[1\].*NaN/],
    ['+Infinity in log_xi', { logXi: [Infinity] }, 'log_xi', /log_xi\[0\].*not finite/],
    ['-Infinity in log_xi', { logXi: [-1, -2, -Infinity] }, 'log_xi', /log_xi\[2\].*not finite/],
    ['log_xi > 0', { logXi: [-1, 0.25] }, 'log_xi', /log_xi\[1\] = 0.25.*<= 1/],
    ['weights of the wrong length', { weights: [1, 1] }, 'weights', /2 entries.*3/],
    ['a negative weight', { weights: [1, -1, 1] }, 'weights', /weights\[1\] = -1/],
    ['a NaN weight', { weights: [NaN, 1, 1] }, 'weights', /weights\[0\] = NaN/],
    ['an infinite weight', { weights: [1, 1, Infinity] }, 'weights', /weights\[2\] = Infinity/],
    ['all-zero weights', { weights: [0, 0, 0] }, 'weights', /all weights are zero/],
    ['missing delta', { delta: undefined }, 'delta', /\(0, 0.5\)/],
    ['NaN delta', { delta: NaN }, 'delta', /\(0, 0.5\)/],
    ['delta = 0', { delta: 0 }, 'delta', /infinite/],
    ['delta = 0.5', { delta: 0.5 }, 'delta', /\(0, 0.5\)/],
    ['negative delta', { delta: -0.1 }, 'delta', /\(0, 0.5\)/],
    ['negative epsilon', { budget: { kind: 'epsilon', value: -1e-9 } }, 'epsilon', />= 0/],
    ['NaN epsilon', { budget: { kind: 'epsilon', value: NaN } }, 'epsilon', /finite/],
    ['infinite epsilon', { budget: { kind: 'epsilon', value: Infinity } }, 'epsilon', /finite/],
    ['rho = 1', { budget: { kind: 'rho', value: 1 } }, 'rho', /\[0, 1\)/],
    ['negative rho', { budget: { kind: 'rho', value: -0.1 } }, 'rho', /\[0, 1\)/],
    ['NaN rho', { budget: { kind: 'rho', value: NaN } }, 'rho', /\[0, 1\)/],
    ['missing budget', { budget: undefined }, 'budget', /epsilon or rho/],
    ['unknown budget kind', { budget: { kind: 'radius', value: 1 } }, 'budget', /radius/],
  ];

  it.each(cases)('rejects %s, naming the field', (_name, patch, field, reason) => {
    const error = rejection({ ...valid, ...patch });
    expect(error.field).toBe(field);
    expect(error.reason).toMatch(reason);
    expect(error.message).toContain(`invalid ${field}`);
    expect(error).toBeInstanceOf(Error);
  });

  it('accepts the boundaries of the valid ranges', () => {
    expect(() => validateProblem({ ...valid, logXi: [0, -0, -800] })).not.toThrow();
    expect(() => validateProblem({ ...valid, weights: [] })).not.toThrow();
    expect(() => validateProblem({ ...valid, weights: [0, 0, 1e-300] })).not.toThrow();
    expect(() => validateProblem({ ...valid, budget: { kind: 'epsilon', value: 0 } })).not.toThrow();
    expect(() => validateProblem({ ...valid, budget: { kind: 'rho', value: 0 } })).not.toThrow();
    expect(() => validateProblem({ ...valid, delta: 0.4999 })).not.toThrow();
  });

  it('is applied by every solver', async () => {
    const bad = { ...valid, delta: 0 };
    for (const solve of [solveExact, solveDual, solveNoSplitting]) {
      expect(() => solve(bad)).toThrow(InvalidProblemError);
    }
    await expect(solveLp(bad)).rejects.toMatchObject({ field: 'delta' });
  });

  it('keeps the LP to LP_MAX_SAMPLES samples', async () => {
    const big = { ...valid, logXi: new Float64Array(LP_MAX_SAMPLES + 1).fill(-0.5) };
    await expect(solveLp(big)).rejects.toMatchObject({ field: 'log_xi', reason: expect.stringMatching(/at most 300/) });
  });
});
