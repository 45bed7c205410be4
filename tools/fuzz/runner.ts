/**
 * Runs the cases one at a time against the stack: the call, its verdict, the clean-up of anything it started (a run
 * or a job that a valid request started is cancelled at once), then a health check of every service; a service that
 * exited or stopped answering is a crash, and is restarted before the next case.
 */
import * as grpc from '@grpc/grpc-js';
import { CancelJobRequest, CancelRunRequest, StartJobResponse, StartRunResponse } from '@alignment/contracts';
import { callRaw, classify, codeName, type CallOutcome } from './call';
import { encode } from './cases/build';
import { COORDINATOR_RPCS } from './cases/coordinator';
import { TRAINER_RPCS } from './cases/trainer';
import { SERVICE_NAMES, type FuzzCase, type ServiceName } from './model';
import type { Tally } from './report';
import { healthy, type Stack } from './services';

/** Streams that follow a live run or job: cancelled once they have said something. */
const WATCH_CALLS = new Set([COORDINATOR_RPCS.WatchRun.path, TRAINER_RPCS.WatchJob.path]);

export interface RunnerOptions {
  deadlineMs: number;
  log: (line: string) => void;
  /** Checked between cases: true stops the run. */
  interrupted: () => boolean;
}

/** The run or job a successful StartRun / StartJob created, to cancel. */
function startedId(c: FuzzCase, outcome: CallOutcome): { kind: 'run' | 'job'; id: string } | undefined {
  if (outcome.code !== grpc.status.OK || !outcome.first) return undefined;
  try {
    if (c.rpc.path === COORDINATOR_RPCS.StartRun.path) {
      const id = StartRunResponse.decode(outcome.first).run?.runId;
      return id ? { kind: 'run', id } : undefined;
    }
    if (c.rpc.path === TRAINER_RPCS.StartJob.path) {
      const id = StartJobResponse.decode(outcome.first).job?.jobId;
      return id ? { kind: 'job', id } : undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

async function cancelStarted(stack: Stack, c: FuzzCase, started: { kind: 'run' | 'job'; id: string }, tally: Tally, o: RunnerOptions): Promise<void> {
  const [service, rpc, bytes] =
    started.kind === 'run'
      ? (['coordinator', COORDINATOR_RPCS.CancelRun, encode(CancelRunRequest, { runId: started.id })] as const)
      : (['trainer', TRAINER_RPCS.CancelJob, encode(CancelJobRequest, { jobId: started.id })] as const);
  const outcome = await callRaw(stack.services[service].client, rpc, bytes, o.deadlineMs);
  // Cancelling what just started must work; FAILED_PRECONDITION would say it already ended, which is fine too.
  if (outcome.code === grpc.status.OK || outcome.code === grpc.status.FAILED_PRECONDITION) return;
  tally.fail({
    kind: outcome.code === undefined || outcome.code === grpc.status.DEADLINE_EXCEEDED ? 'hang' : 'wrong_code',
    service,
    rpc: rpc.rpc,
    case: `(clean-up of #${c.index}) ${rpc.rpc} ${started.kind} ${started.id}`,
    index: c.index,
    code: codeName(outcome.code),
    details: outcome.details,
  });
}

/** Services that exited or do not answer SERVING (asked twice, a second apart). */
async function unhealthy(stack: Stack): Promise<Array<{ name: ServiceName; why: string }>> {
  const checks = await Promise.all(
    SERVICE_NAMES.map(async (name) => {
      const service = stack.services[name];
      if (service.exited) return { name, why: `the process exited (${service.exited})` };
      if (await healthy(service.client, 5_000)) return undefined;
      await new Promise((r) => setTimeout(r, 1_000));
      if (service.exited) return { name, why: `the process exited (${service.exited})` };
      return (await healthy(service.client, 5_000)) ? undefined : { name, why: 'the health check did not answer SERVING twice' };
    }),
  );
  return checks.filter((c): c is { name: ServiceName; why: string } => c !== undefined);
}

export async function runCases(stack: Stack, cases: FuzzCase[], tally: Tally, o: RunnerOptions): Promise<void> {
  const width = String(cases.length).length;
  for (const c of cases) {
    if (o.interrupted()) return;
    const bytes = c.build();
    const outcome = await callRaw(stack.services[c.rpc.service].client, c.rpc, bytes, o.deadlineMs, WATCH_CALLS.has(c.rpc.path));
    if (o.interrupted()) return;
    const code = codeName(outcome.code);
    tally.countCase(c, code, outcome.code === grpc.status.OK || (outcome.code === grpc.status.CANCELLED && outcome.cancelledByUs));
    const verdict = classify(c.expect, outcome);
    const started = startedId(c, outcome);
    if (started) await cancelStarted(stack, c, started, tally, o);

    const sick = await unhealthy(stack);
    const crashedTarget = sick.some((s) => s.name === c.rpc.service);
    for (const s of sick) {
      tally.fail({ kind: 'crash', service: s.name, rpc: c.rpc.rpc, case: c.name, index: c.index, code, details: `${s.why}; log tail: ${stack.logTail(s.name, 600)}` });
    }
    // A call cut short by its own service's crash is counted once, as the crash.
    if (verdict.kind !== 'pass' && !crashedTarget) {
      tally.fail({ kind: verdict.kind, service: c.rpc.service, rpc: c.rpc.rpc, case: c.name, index: c.index, code, details: `${verdict.reason}; ${outcome.details}` });
    }
    const mark = sick.length > 0 ? ' CRASH' : verdict.kind === 'pass' ? '' : ` ${verdict.kind.toUpperCase()}`;
    o.log(
      `[${String(c.index).padStart(width)}/${cases.length}] ${c.rpc.service} ${c.rpc.rpc} ${c.name} (${(bytes.byteLength / 1024).toFixed(0)} KiB) -> ${code} in ${outcome.elapsedMs} ms${mark}`,
    );
    for (const s of sick) {
      if (o.interrupted()) return;
      o.log(`restarting ${s.name} (${s.why})`);
      await stack.restart(s.name);
    }
  }
}
