import { status, type ServiceError, Metadata } from '@grpc/grpc-js';

/**
 * Thrown when a request (or a spec inside it) is invalid. Mapped to INVALID_ARGUMENT; `field` is the request
 * field's proto name (snake_case, dotted for nested fields, e.g. `spec.loss.wdro.delta`) so a user can find it.
 */
export class InvalidArgumentError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid ${field}: ${reason}`);
    this.name = 'InvalidArgumentError';
  }
}

/** Thrown when something the request names does not exist (a job id, a run id, a model directory). */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** Thrown when the request is valid but the system is not in a state to serve it (e.g. a finished run). */
export class FailedPreconditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FailedPreconditionError';
  }
}

/**
 * Thrown when work stops because its call was cancelled (the client cancelled or went away, or the deadline
 * passed). Mapped to CANCELLED, which nobody receives (the client has gone) but which keeps the log honest: a
 * cancelled call is not a server fault.
 */
export class CancelledError extends Error {
  constructor(message = 'the call was cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

/** A domain error as a grpc-js ServiceError. Unknown errors become INTERNAL; their stack stays in the log. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  if (isServiceError(err)) return err;
  const metadata = new Metadata();
  if (err instanceof InvalidArgumentError) {
    metadata.set('invalid-field', err.field);
    return { code: status.INVALID_ARGUMENT, details: err.message, metadata };
  }
  if (err instanceof NotFoundError) return { code: status.NOT_FOUND, details: err.message };
  if (err instanceof FailedPreconditionError) return { code: status.FAILED_PRECONDITION, details: err.message };
  if (err instanceof CancelledError) return { code: status.CANCELLED, details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: `internal error: ${message}` };
}

export function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && typeof (err as ServiceError).code === 'number' && 'details' in err;
}
