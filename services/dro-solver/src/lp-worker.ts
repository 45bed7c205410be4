// Runs one LP-mode solve in a worker thread (lp-thread.ts): HiGHS takes seconds at a few hundred samples, and on the
// service's event loop that failed its health checks (issue 12: 12 of 13 failed during an N = 300 solve).
import { parentPort, workerData } from 'node:worker_threads';
import { solveLp, type DroProblem } from './solver';
import { toResponse } from './service';

const { problem, omitAtoms } = workerData as { problem: DroProblem; omitAtoms: boolean };
solveLp(problem).then(
  (solution) => parentPort!.postMessage({ response: toResponse(solution, omitAtoms) }),
  (error: Error & { field?: string; reason?: string }) =>
    parentPort!.postMessage({ error: { name: error.name, message: error.message, field: error.field, reason: error.reason } }),
);
