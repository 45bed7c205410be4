import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SolveResponse } from '@alignment/contracts';
import { InvalidProblemError, type DroProblem } from './solver';

let queue: Promise<unknown> = Promise.resolve();

/**
 * An LP-mode solve in a worker thread (lp-worker.ts), one at a time, so that the event loop keeps answering health
 * checks and EXACT solves while HiGHS works. The worker loads the TypeScript sources through tsx, as the services
 * themselves run.
 */
export function solveLpOffThread(problem: DroProblem, omitAtoms: boolean): Promise<SolveResponse> {
  const run = queue.then(() => runWorker(problem, omitAtoms));
  queue = run.catch(() => undefined);
  return run;
}

function runWorker(problem: DroProblem, omitAtoms: boolean): Promise<SolveResponse> {
  return new Promise((resolve, reject) => {
    // tsx's CommonJS hook, registered inside the worker: loader flags of the parent do not reach worker threads.
    const source = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(path.join(__dirname, 'lp-worker.ts'))});`;
    const worker = new Worker(source, { eval: true, workerData: { problem, omitAtoms } });
    let settled = false;
    worker.once('message', (message: { response?: SolveResponse; error?: { name: string; message: string; field?: string; reason?: string } }) => {
      settled = true;
      const e = message.error;
      if (!e) resolve(message.response!);
      else reject(e.name === 'InvalidProblemError' && e.field ? new InvalidProblemError(e.field, e.reason ?? e.message) : new Error(e.message));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the LP worker exited with code ${code} before answering`));
    });
  });
}
