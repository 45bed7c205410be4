import { SolveResponse } from '@alignment/contracts';
import { serializeSolveResponse } from './wire';

describe('serializeSolveResponse', () => {
  it('decodes to the same message as the generated encoder, for empty, small and large arrays', () => {
    for (const n of [0, 1, 17, 4096]) {
      const arr = (k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * k + 0.5) * 10 ** (i % 7) - (i % 3));
      const message = SolveResponse.fromPartial({
        value: 1.25, ermValue: 0.5, lambdaStar: 7.5, epsilon: 0.1, epsilonSat: 0.4, saturated: n === 1,
        movedFraction: arr(1), gradXi: arr(2), surrogateA: arr(3), surrogateB: arr(4),
        atoms: [{ location: 0.01, mass: 0.25, sourceIndex: 3, moved: true }],
        diagnostics: { dualGap: 1e-17, transportCost: 0.1, nClipped: 1, nMoved: 2, splitIndex: -1, solveMicros: 12 },
        warnings: ['w'],
      });
      const fast = SolveResponse.decode(serializeSolveResponse(message));
      expect(fast).toEqual(SolveResponse.decode(SolveResponse.encode(message).finish()));
      expect(fast.gradXi).toEqual(message.gradXi);
    }
  });
});
