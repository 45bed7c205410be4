import * as grpc from '@grpc/grpc-js';
import { CoordinatorClient, type DeleteRunResponse, type Run, type RunSpec, type WatchRunResponse } from '@alignment/contracts';
import { createClient, fieldViolationsOf, unaryCall } from '@alignment/service-kit';

/** The coordinator's address when neither --address nor $ALIGNMENT_COORDINATOR is given (`npm run stack`'s). */
export const DEFAULT_ADDRESS = 'localhost:50051';

/** StartRun validates the spec and hashes every input file before it answers. */
const START_DEADLINE_MS = 120_000;
/** ListRuns pages (the coordinator allows up to 1000). */
const PAGE_SIZE = 500;

/** The Coordinator API as the CLI calls it: one client per command, closed when the command ends. */
export class Coordinator {
  private readonly client: CoordinatorClient;

  constructor(readonly address: string, token?: string) {
    // UNAVAILABLE is retried a few times (service-kit's policy): a coordinator that is just starting answers.
    // A token goes with every call, for a coordinator that authenticates (AUTH_TOKENS_FILE).
    this.client = createClient(CoordinatorClient, address, { defaultDeadlineMs: 30_000, ...(token ? { metadata: { authorization: `Bearer ${token}` } } : {}) });
  }

  async startRun(runId: string, spec: RunSpec): Promise<Run> {
    const response = await unaryCall(this.client, this.client.startRun, { runId, spec }, { deadlineMs: START_DEADLINE_MS });
    return response.run!;
  }

  async getRun(runId: string): Promise<Run> {
    return (await unaryCall(this.client, this.client.getRun, { runId })).run!;
  }

  /** Runs in ListRuns' order (oldest first), all of them or the first `limit`. */
  async listRuns(limit = Infinity): Promise<Run[]> {
    const runs: Run[] = [];
    let pageToken = '';
    do {
      const pageSize = Math.min(PAGE_SIZE, limit - runs.length);
      const page = await unaryCall(this.client, this.client.listRuns, { pageSize, pageToken });
      runs.push(...page.runs);
      pageToken = page.nextPageToken;
    } while (pageToken !== '' && runs.length < limit);
    return runs.slice(0, limit);
  }

  async cancelRun(runId: string): Promise<Run> {
    return (await unaryCall(this.client, this.client.cancelRun, { runId })).run!;
  }

  async deleteRun(runId: string): Promise<DeleteRunResponse> {
    return unaryCall(this.client, this.client.deleteRun, { runId });
  }

  /** WatchRun's stream, without a deadline (it lasts as long as the run). */
  watchRun(runId: string): grpc.ClientReadableStream<WatchRunResponse> {
    return this.client.watchRun({ runId }, new grpc.Metadata(), { deadline: Infinity });
  }

  close(): void {
    this.client.close();
  }
}

/** A gRPC status error (what the client's calls reject with). */
export function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as grpc.ServiceError).code === 'number' && 'details' in error;
}

/**
 * A status error as the CLI prints it: the code's name and the details (`NOT_FOUND: run_id: no run 'x'`), then the
 * field it names (`[field spec.loss.beta]`).
 */
export function statusMessage(error: grpc.ServiceError, address: string): string {
  const name = grpc.status[error.code] ?? String(error.code);
  const field = fieldOf(error);
  const hint =
    error.code === grpc.status.UNAVAILABLE
      ? ` (is the coordinator running at ${address}? \`npm run stack\` starts it; --address or $ALIGNMENT_COORDINATOR point elsewhere)`
      : '';
  // grpc-js ends a connection failure's details with an empty 'Resolution note: '.
  return `${name}: ${error.details.replace(/\s*Resolution note:\s*$/, '')}${field ? ` [field ${field}]` : ''}${hint}`;
}

/**
 * The request field a status names: the first google.rpc.BadRequest field violation in `grpc-status-details-bin`,
 * else the `invalid-field` trailer that services of the release before send (issue 13).
 */
export function fieldOf(error: grpc.ServiceError): string | undefined {
  const [violation] = fieldViolationsOf(error.metadata);
  if (violation) return violation.field;
  const [legacy] = error.metadata?.get('invalid-field') ?? [];
  return typeof legacy === 'string' ? legacy : undefined;
}
