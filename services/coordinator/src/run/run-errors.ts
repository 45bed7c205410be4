// The engine's own errors, which the service maps to status codes (src/service.ts).

/** Thrown by StartRun when the run id exists with a different spec (mapped to ALREADY_EXISTS). */
export class RunConflictError extends Error {
  constructor(runId: string) {
    super(`run_id '${runId}' already names a run with a different spec; choose another run_id`);
    this.name = 'RunConflictError';
  }
}

/** Thrown when a request arrives while the coordinator shuts down (mapped to UNAVAILABLE: retry elsewhere/later). */
export class ShuttingDownError extends Error {
  constructor() {
    super('the coordinator is shutting down; runs resume when it restarts');
    this.name = 'ShuttingDownError';
  }
}
