import * as grpc from '@grpc/grpc-js';
import {
  CoordinatorService,
  type CancelRunRequest,
  type CancelRunResponse,
  type DeleteRunRequest,
  type DeleteRunResponse,
  type GetRunRequest,
  type GetRunResponse,
  ListRunsRequest,
  type ListRunsResponse,
  type StartRunRequest,
  type StartRunResponse,
  type WatchRunRequest,
  type WatchRunResponse,
  rangeViolations,
} from '@alignment/contracts';
import { InvalidArgumentError, NotFoundError } from '@alignment/errors';
import type { ServiceBinding } from '@alignment/service-kit';
import { ANONYMOUS, authorizeRun, UnauthenticatedError, type AuthenticatedCall, type CallAuthenticator, type Principal } from './auth';
import { RunConflictError, ShuttingDownError, type RunEngine, type RunEvent } from './run';

/** ListRuns page size when the request says 0 (the most it may ask for, 1000, is a buf.validate annotation). */
export const DEFAULT_PAGE_SIZE = 50;

function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(`${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
}

/** Domain errors the service kit does not know, as status codes. */
function mapped(error: unknown): unknown {
  if (error instanceof RunConflictError) return serviceError(grpc.status.ALREADY_EXISTS, error.message);
  if (error instanceof ShuttingDownError) return serviceError(grpc.status.UNAVAILABLE, error.message);
  if (error instanceof UnauthenticatedError) return serviceError(grpc.status.UNAUTHENTICATED, error.message);
  return error;
}

async function handle<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw mapped(error);
  }
}

function toResponse(event: RunEvent): WatchRunResponse | undefined {
  switch (event.kind) {
    case 'stage':
      return { event: { $case: 'stage', value: { round: event.round, stage: event.stage, state: event.state, message: event.message } } };
    case 'progress':
      return { event: { $case: 'progress', value: event.progress } };
    case 'metrics':
      return { event: { $case: 'roundMetrics', value: event.metrics } };
    case 'ended':
      return { event: { $case: 'run', value: event.run } };
    default:
      return undefined;
  }
}

/**
 * WatchRun: the current state first (a watcher that joins late), then live events, ending with the final Run.
 * A coordinator shutting down ends the stream with UNAVAILABLE (watch again once it is back).
 */
async function watchRun(engine: RunEngine, request: WatchRunRequest, call: grpc.ServerWritableStream<WatchRunRequest, WatchRunResponse>): Promise<void> {
  const queue: RunEvent[] = [];
  let wake: (() => void) | undefined;
  const { initial, unsubscribe } = engine.watch(request.runId, (event) => {
    queue.push(event);
    wake?.();
  });
  const cancelled = new Promise<void>((resolve) => call.once('cancelled', resolve));
  try {
    queue.unshift(...initial);
    for (;;) {
      while (queue.length > 0) {
        const event = queue.shift()!;
        if (event.kind === 'shutdown') throw serviceError(grpc.status.UNAVAILABLE, 'the coordinator is shutting down; watch again after it restarts');
        const response = toResponse(event);
        if (response) call.write(response);
        if (event.kind === 'ended') return;
      }
      if (call.cancelled) return;
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), cancelled]);
      wake = undefined;
      if (call.cancelled) return;
    }
  } finally {
    unsubscribe();
  }
}

/**
 * The Coordinator service. With an authenticator (AUTH_TOKENS_FILE: a bearer token; TLS_PRINCIPALS: a client
 * certificate, cert-auth.ts), every call needs credentials: StartRun makes its principal the run's owner, and only the owner or an admin may read, watch, cancel, resume or delete the run; ListRuns
 * lists the caller's runs (every run for an admin). Without one, every caller acts as an admin.
 */
export function coordinatorBinding(engine: RunEngine, authenticator?: CallAuthenticator): ServiceBinding {
  const principalOf = (call: AuthenticatedCall): Principal => (authenticator ? authenticator.authenticateCall(call) : ANONYMOUS);
  /** The run, if the caller may act on it. */
  const ownRun = (principal: Principal, runId: string) => {
    if (!runId) throw new InvalidArgumentError('run_id', 'is required');
    const run = engine.getRun(runId);
    authorizeRun(principal, run);
    return run;
  };
  return {
    definition: CoordinatorService as unknown as ServiceBinding['definition'],
    handlers: {
      startRun: (request: StartRunRequest, call: grpc.ServerUnaryCall<StartRunRequest, StartRunResponse>): Promise<StartRunResponse> =>
        handle(async () => {
          const principal = principalOf(call);
          if (!request.spec) throw new InvalidArgumentError('spec', 'is required');
          if (request.runId) {
            try {
              ownRun(principal, request.runId); // resuming someone else's run is theirs to do
            } catch (error) {
              if (!(error instanceof NotFoundError)) throw error;
            }
          }
          return { run: await engine.startRun({ runId: request.runId, spec: request.spec, owner: principal.name }) };
        }),
      getRun: (request: GetRunRequest, call: grpc.ServerUnaryCall<GetRunRequest, GetRunResponse>): Promise<GetRunResponse> =>
        handle(() => ({ run: ownRun(principalOf(call), request.runId) })),
      listRuns: (request: ListRunsRequest, call: grpc.ServerUnaryCall<ListRunsRequest, ListRunsResponse>): Promise<ListRunsResponse> =>
        handle(() => {
          const principal = principalOf(call);
          const [outOfRange] = rangeViolations('alignment.v1.ListRunsRequest', ListRunsRequest.encode(request).finish());
          if (outOfRange) throw new InvalidArgumentError(outOfRange.field, outOfRange.description);
          return engine.listRuns(request.pageSize || DEFAULT_PAGE_SIZE, request.pageToken, principal.admin ? undefined : principal.name);
        }),
      watchRun: (request: WatchRunRequest, call: grpc.ServerWritableStream<WatchRunRequest, WatchRunResponse>) =>
        handle(() => {
          ownRun(principalOf(call), request.runId);
          return watchRun(engine, request, call);
        }),
      cancelRun: (request: CancelRunRequest, call: grpc.ServerUnaryCall<CancelRunRequest, CancelRunResponse>): Promise<CancelRunResponse> =>
        handle(async () => {
          ownRun(principalOf(call), request.runId);
          return { run: await engine.cancelRun(request.runId) };
        }),
      deleteRun: (request: DeleteRunRequest, call: grpc.ServerUnaryCall<DeleteRunRequest, DeleteRunResponse>): Promise<DeleteRunResponse> =>
        handle(async () => {
          ownRun(principalOf(call), request.runId);
          return { runId: request.runId, freedBytes: await engine.deleteRun(request.runId) };
        }),
    },
  };
}
