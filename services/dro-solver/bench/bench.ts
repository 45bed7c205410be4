// dro-solver benchmark: exact solver in-process at N = 10^6, gRPC round trips on loopback for the per-step sizes,
// and the exact solver against the HiGHS LP at N = 300 (the ratio). Last line: one JSON object.
import * as path from 'node:path';
import * as grpcJs from '@grpc/grpc-js';
import { DroSolverClient, DroSolverService, SolveRequest, SolveResponse } from '@alignment/contracts';
import { createClient, unaryCall } from '@alignment/service-kit';
import { freePort, spawnProcess, waitFor } from '@alignment/service-kit/testing';
import { benchInProcess, benchLpVsExact, seededLogXi } from './inprocess';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function grpcRoundTrips(sizes: number[], calls: number, omitAtoms: boolean): Promise<Record<string, { p50_ms: number; p99_ms: number }>> {
  const root = path.resolve(__dirname, '../../..');
  const port = await freePort();
  const server = spawnProcess(path.join(root, 'node_modules/.bin/tsx'), ['services/dro-solver/src/main.ts'], { PORT: String(port), LOG_LEVEL: 'warn' }, root);
  const client = createClient(DroSolverClient, `127.0.0.1:${port}`, { defaultDeadlineMs: 5_000 });
  try {
    await waitFor(
      () => unaryCall(client, client.solve, SolveRequest.fromPartial({ logXi: [-1], delta: 0.01, radius: { $case: 'rho', value: 0.1 } })).then(() => true),
      30_000,
      'the dro-solver to serve',
    );
    const results: Record<string, { p50_ms: number; p99_ms: number }> = {};
    for (const n of sizes) {
      const request = SolveRequest.fromPartial({ logXi: Array.from(seededLogXi(n, 7)), delta: 0.01, radius: { $case: 'rho', value: 0.2 }, omitAtoms });
      for (let i = 0; i < 200; i++) await unaryCall(client, client.solve, request);
      const times: number[] = [];
      for (let i = 0; i < calls; i++) {
        const t0 = process.hrtime.bigint();
        await unaryCall(client, client.solve, request);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      results[String(n)] = { p50_ms: percentile(times, 50), p99_ms: percentile(times, 99) };
      console.log(`grpc round trip N=${n}${omitAtoms ? ' (per-step call, omit_atoms)' : ' (with atoms)'}: p50 ${results[String(n)].p50_ms.toFixed(3)} ms, p99 ${results[String(n)].p99_ms.toFixed(3)} ms (${calls} calls)`);
    }
    return results;
  } finally {
    client.close();
    await server.stop();
  }
}

/**
 * The floor of this machine: a bare grpc-js echo (no interceptors, no tracing, a constant tiny response) on
 * loopback in one process, timed the same way. Our round trips are read against it.
 */
async function bareEchoFloor(calls: number): Promise<{ p50_ms: number; p99_ms: number }> {
  const server = new grpcJs.Server();
  server.addService(DroSolverService as unknown as grpcJs.ServiceDefinition, {
    solve: (_call: unknown, callback: grpcJs.sendUnaryData<SolveResponse>) => callback(null, SolveResponse.fromPartial({ value: 1 })),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpcJs.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const client = new DroSolverClient(`127.0.0.1:${port}`, grpcJs.credentials.createInsecure());
  const request = SolveRequest.fromPartial({ logXi: [-1], delta: 0.01 });
  const call = () => new Promise((resolve, reject) => client.solve(request, (e, r) => (e ? reject(e) : resolve(r))));
  for (let i = 0; i < 300; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    await call();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  client.close();
  server.forceShutdown();
  times.sort((a, b) => a - b);
  const floor = { p50_ms: percentile(times, 50), p99_ms: percentile(times, 99) };
  console.log(`bare grpc-js echo floor (in-process, tiny message): p50 ${floor.p50_ms.toFixed(3)} ms, p99 ${floor.p99_ms.toFixed(3)} ms`);
  return floor;
}

async function main(): Promise<void> {
  const large = benchInProcess(1_000_000, 9);
  console.log(`exact solver in-process N=1e6: median ${large.medianMs.toFixed(1)} ms (9 runs; target < 300 ms)`);
  // The trainer's per-step calls omit the atoms; the full response is timed too, for grpcurl-style use.
  const grpc = await grpcRoundTrips([32, 512, 4096], 2_000, true);
  const grpcWithAtoms = await grpcRoundTrips([4096], 500, false);
  const floor = await bareEchoFloor(2_000);
  const lp = await benchLpVsExact(300, 3);
  const ratio = lp.lpMedianMs / lp.exactMedianMs;
  console.log(`N=300: exact ${lp.exactMedianMs.toFixed(4)} ms vs HiGHS LP ${lp.lpMedianMs.toFixed(2)} ms (medians): ${ratio.toFixed(0)}x`);
  console.log(
    JSON.stringify({
      bench: 'dro-solver',
      metric: 'solve_ms_n300',
      value: lp.exactMedianMs,
      baseline: lp.lpMedianMs,
      baseline_name: 'HiGHS LP (Eq. 2-4, chord pieces)',
      ratio,
      exact_ms_n1e6: large.medianMs,
      grpc_round_trip_ms: grpc,
      grpc_round_trip_ms_with_atoms: grpcWithAtoms,
      grpc_bare_echo_floor_ms: floor,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
