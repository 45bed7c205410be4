// The DroSolver over a real gRPC server on loopback: modes agree, bad input is INVALID_ARGUMENT naming the
// field, and the server keeps serving afterwards.
import * as grpc from '@grpc/grpc-js';
import { DESCRIPTOR_SET_PATH, DroSolverClient, SolveMode, SolveRequest } from '@alignment/contracts';
import { createClient, startServer, unaryCall, type RunningServer } from '@alignment/service-kit';
import { droSolverBinding } from './service';

describe('DroSolver service', () => {
  let running: RunningServer;
  let client: DroSolverClient;
  const solve = (partial: Partial<SolveRequest>) => unaryCall(client, client.solve, SolveRequest.fromPartial(partial));

  beforeAll(async () => {
    running = await startServer({
      name: 'dro-solver-test', port: 0, host: '127.0.0.1', bindings: [droSolverBinding()], descriptorSetPath: DESCRIPTOR_SET_PATH,
    });
    client = createClient(DroSolverClient, running.address, { defaultDeadlineMs: 10_000 });
  });

  afterAll(async () => {
    client.close();
    await running.shutdown();
  });

  const logXi = [-0.02, -0.1, -0.35, -0.7, -1.2, -2.0, -3.5, -0.5, -0.05, -6.0];

  it('EXACT, DUAL and LP give the same worst case', async () => {
    const request = { logXi, delta: 0.01, radius: { $case: 'epsilon' as const, value: 0.08 } };
    const exact = await solve({ ...request, mode: SolveMode.SOLVE_MODE_EXACT });
    const dual = await solve({ ...request, mode: SolveMode.SOLVE_MODE_DUAL });
    const lp = await solve({ ...request, mode: SolveMode.SOLVE_MODE_LP });
    expect(exact.value).toBeGreaterThan(exact.ermValue);
    expect(Math.abs(dual.value - exact.value)).toBeLessThanOrEqual(1e-9 * Math.max(1, exact.value));
    expect(Math.abs(lp.value - exact.value)).toBeLessThanOrEqual(1e-9 * Math.max(1, exact.value));
    expect(lp.movedFraction.map((m) => m.toFixed(9))).toEqual(exact.movedFraction.map((m) => m.toFixed(9)));
    expect(exact.diagnostics!.transportCost).toBeLessThanOrEqual(0.08 * (1 + 1e-12));
    expect(exact.diagnostics!.solveMicros).toBeGreaterThan(0);
  });

  // Issue 12: an N = 300 LP blocked the event loop for 28 s and 12 of 13 health checks failed.
  it('solves LP in a worker thread: health checks and EXACT solves answer meanwhile', async () => {
    const logXi = Array.from({ length: 250 }, (_, i) => -0.05 - ((i * 7919) % 97) / 50);
    const lp = solve({ logXi, delta: 0.1, radius: { $case: 'rho', value: 0.3 }, mode: SolveMode.SOLVE_MODE_LP });
    const exact = await solve({ logXi, delta: 0.1, radius: { $case: 'rho', value: 0.3 } });
    const latencies: number[] = [];
    let done = false;
    void lp.finally(() => (done = true));
    while (!done) {
      const started = Date.now();
      await solve({ logXi: [-1, -2], delta: 0.01, radius: { $case: 'rho', value: 0.1 } });
      latencies.push(Date.now() - started);
      await new Promise((r) => setTimeout(r, 50));
    }
    const answer = await lp;
    expect(latencies.length).toBeGreaterThan(3); // the LP took a while, and calls were answered all along
    expect(Math.max(...latencies)).toBeLessThan(500);
    expect(Math.abs(answer.value - exact.value)).toBeLessThanOrEqual(1e-9 * Math.max(1, exact.value));
    expect(answer.diagnostics!.solveMicros).toBeGreaterThan(0);
  }, 60_000);

  it('the unspecified mode is the exact solver', async () => {
    const request = { logXi, delta: 0.01, radius: { $case: 'rho' as const, value: 0.3 } };
    const unspecified = await solve(request);
    const exact = await solve({ ...request, mode: SolveMode.SOLVE_MODE_EXACT });
    expect(unspecified.value).toBe(exact.value);
    expect(unspecified.epsilon).toBeCloseTo(0.3 * unspecified.epsilonSat, 14);
  });

  it('returns the atoms of Q* unless omit_atoms is set', async () => {
    const request = { logXi, delta: 0.01, radius: { $case: 'rho' as const, value: 0.3 } };
    const full = await solve(request);
    const lean = await solve({ ...request, omitAtoms: true });
    expect(lean.atoms).toEqual([]);
    expect(lean.value).toBe(full.value);
    expect(lean.surrogateA).toEqual(full.surrogateA);
    expect(full.atoms.reduce((mass, a) => mass + a.mass, 0)).toBeCloseTo(1, 12);
    const moved = full.atoms.filter((a) => a.moved);
    expect(moved.every((a) => a.location === 0.01)).toBe(true);
    expect(moved.reduce((mass, a) => mass + a.mass, 0)).toBeCloseTo(full.movedFraction.reduce((s, m) => s + m, 0) / logXi.length, 12);
  });

  it('saturates with a warning when epsilon reaches epsilon_sat', async () => {
    const response = await solve({ logXi, delta: 0.01, radius: { $case: 'epsilon', value: 10 } });
    expect(response.saturated).toBe(true);
    expect(response.lambdaStar).toBe(0);
    expect(response.value).toBeCloseTo(-Math.log(0.01), 12);
    expect(response.warnings.join(' ')).toMatch(/saturat/);
  });

  it('serves N = 100 000 in one call', async () => {
    const big = Array.from({ length: 100_000 }, (_, i) => -((i * 7919) % 1000) / 200 - 1e-3);
    const response = await solve({ logXi: big, delta: 0.001, radius: { $case: 'rho', value: 0.5 } });
    expect(response.movedFraction).toHaveLength(100_000);
    expect(Math.abs(response.diagnostics!.dualGap)).toBeLessThan(1e-9);
  });

  const bad: Array<[string, Partial<SolveRequest>, string]> = [
    ['empty log_xi', { logXi: [], delta: 0.01, radius: { $case: 'epsilon', value: 0.1 } }, 'log_xi'],
    ['NaN in log_xi', { logXi: [-1, NaN], delta: 0.01, radius: { $case: 'epsilon', value: 0.1 } }, 'log_xi'],
    ['-Infinity in log_xi', { logXi: [-Infinity], delta: 0.01, radius: { $case: 'epsilon', value: 0.1 } }, 'log_xi'],
    ['positive log_xi', { logXi: [0.5], delta: 0.01, radius: { $case: 'epsilon', value: 0.1 } }, 'log_xi'],
    ['delta missing (0)', { logXi: [-1], radius: { $case: 'epsilon', value: 0.1 } }, 'delta'],
    ['delta = 0.5', { logXi: [-1], delta: 0.5, radius: { $case: 'epsilon', value: 0.1 } }, 'delta'],
    ['delta NaN', { logXi: [-1], delta: NaN, radius: { $case: 'epsilon', value: 0.1 } }, 'delta'],
    ['negative epsilon', { logXi: [-1], delta: 0.01, radius: { $case: 'epsilon', value: -0.1 } }, 'epsilon'],
    ['infinite epsilon', { logXi: [-1], delta: 0.01, radius: { $case: 'epsilon', value: Infinity } }, 'epsilon'],
    ['rho = 1', { logXi: [-1], delta: 0.01, radius: { $case: 'rho', value: 1 } }, 'rho'],
    ['negative rho', { logXi: [-1], delta: 0.01, radius: { $case: 'rho', value: -0.2 } }, 'rho'],
    ['no radius', { logXi: [-1], delta: 0.01 }, 'radius'],
    ['weights length mismatch', { logXi: [-1, -2], weights: [1], delta: 0.01, radius: { $case: 'rho', value: 0.1 } }, 'weights'],
    ['negative weight', { logXi: [-1, -2], weights: [1, -1], delta: 0.01, radius: { $case: 'rho', value: 0.1 } }, 'weights'],
    ['LP above 300 samples', { logXi: new Array(301).fill(-1), delta: 0.01, radius: { $case: 'rho', value: 0.1 }, mode: SolveMode.SOLVE_MODE_LP }, 'log_xi'],
    ['unknown mode', { logXi: [-1], delta: 0.01, radius: { $case: 'rho', value: 0.1 }, mode: 42 as SolveMode }, 'mode'],
    // Issue 12: N = 10^7 drove the solver to 1.8-2.9 GB RSS against a 1 Gi pod limit.
    ['more samples than DRO_MAX_SAMPLES', { logXi: new Array(1_000_001).fill(-1), delta: 0.01, radius: { $case: 'rho', value: 0.1 } }, 'log_xi'],
  ];

  it.each(bad)('rejects %s with INVALID_ARGUMENT naming the field', async (_name, request, field) => {
    const error = await solve(request).catch((e: grpc.ServiceError) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((error as grpc.ServiceError).details).toMatch(new RegExp(`^invalid ${field}: `));
    const healthy = await solve({ logXi: [-1], delta: 0.01, radius: { $case: 'rho', value: 0.1 } });
    expect(healthy.value).toBeGreaterThan(1);
  });
});
