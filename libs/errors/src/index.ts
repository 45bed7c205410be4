/**
 * The errors domain code throws when a request cannot be served: plain Error subclasses that know nothing of gRPC.
 * Only the transport maps them to status codes (service-kit's toServiceError: INVALID_ARGUMENT, PERMISSION_DENIED,
 * NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, CANCELLED; see docs/architecture.md). A domain with a more specific error subclasses one of
 * these (the LM runtime's LmArgumentError, the DRO solver's InvalidProblemError), so the mapping reaches it unchanged.
 */

/**
 * An input that cannot be used, naming the field that carries it. `field` is the request field's proto name
 * (snake_case, dotted for nested fields, e.g. `spec.loss.wdro.delta`) so a user can find it; `reason` says what is
 * wrong with it. The transport maps it to INVALID_ARGUMENT.
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

/**
 * A path the request names lies outside what this service may read or write (issue 12: confinement). `field` names
 * the request field; the message says nothing of the path's content, hash or existence. Mapped to PERMISSION_DENIED.
 */
export class PermissionDeniedError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`permission denied for ${field}: ${reason}`);
    this.name = 'PermissionDeniedError';
  }
}

/**
 * What the request would create is there already and is not the same (issue 12: a service never overwrites an
 * artifact it did not just write itself). `field` names the request field that named it. Mapped to ALREADY_EXISTS.
 */
export class AlreadyExistsError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'AlreadyExistsError';
  }
}

/** Something the request names does not exist (a job id, a run id, a model directory). */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** The request is valid but the system is not in a state to serve it (e.g. a finished run). */
export class FailedPreconditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FailedPreconditionError';
  }
}

/**
 * Work stopped because its AbortSignal fired: the client cancelled or went away, or a deadline passed. The transport
 * maps it to CANCELLED, which nobody receives (the client has gone) but which keeps the log honest: a cancelled call
 * is not a server fault.
 */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

/** Throws CancelledError (with the abort reason's message, if it is an Error) once `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError(signal.reason instanceof Error ? signal.reason.message : 'cancelled');
}
