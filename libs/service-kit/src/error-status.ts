import { status, type ServiceError, Metadata } from '@grpc/grpc-js';
import { AlreadyExistsError, CancelledError, FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError } from '@alignment/errors';
import { STATUS_DETAILS_KEY, encodeBadRequestStatus } from './bad-request';

// The transport boundary: domain code throws the transport-free errors of @alignment/errors, and this is the one
// place they become gRPC status codes (docs/architecture.md).

/**
 * The longest status message sent (issue 12: an error echoing a 1 MiB run_id could not fit in the trailers, and the
 * client waited for its deadline instead of getting INVALID_ARGUMENT).
 */
export const MAX_STATUS_DETAILS = 2048;

function clip(details: string): string {
  return details.length <= MAX_STATUS_DETAILS ? details : `${details.slice(0, MAX_STATUS_DETAILS)}… (${details.length - MAX_STATUS_DETAILS} more characters)`;
}

/**
 * A domain error as a grpc-js ServiceError. InvalidArgumentError (and its subclasses) becomes INVALID_ARGUMENT with
 * a google.rpc.Status whose BadRequest names the field's proto path in the `grpc-status-details-bin` trailer
 * (bad-request.ts), and the same path in the `invalid-field` trailer. Unknown errors become INTERNAL; their stack
 * stays in the log.
 *
 * The `invalid-field` trailer is kept for one release after BadRequest details came (issue 13), so that clients
 * reading it keep working; new clients read the BadRequest.
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const result = statusOf(err);
  return typeof result.details === 'string' ? { ...result, details: clip(result.details) } : result;
}

function statusOf(err: unknown): Partial<ServiceError> {
  if (isServiceError(err)) return err;
  const metadata = new Metadata();
  if (err instanceof InvalidArgumentError) {
    const details = clip(err.message);
    const violation = { field: clip(err.field), description: clip(err.reason) };
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeBadRequestStatus(status.INVALID_ARGUMENT, details, [violation])));
    metadata.set('invalid-field', err.field); // kept for one release (issue 13); the BadRequest above replaces it
    return { code: status.INVALID_ARGUMENT, details, metadata };
  }
  if (err instanceof PermissionDeniedError) {
    metadata.set('invalid-field', err.field);
    return { code: status.PERMISSION_DENIED, details: err.message, metadata };
  }
  if (err instanceof AlreadyExistsError) {
    metadata.set('invalid-field', err.field);
    return { code: status.ALREADY_EXISTS, details: err.message, metadata };
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
