/**
 * An argument the runtime cannot use: an invalid sampling parameter, a prompt longer than the model's context, a
 * chat template that refuses the conversation. `field` names the argument relative to the call (e.g. `top_p`,
 * `prompts[3]`, `items[0]`), in the snake_case of the contracts, so a service can prefix it with the request path.
 */
export class LmArgumentError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid ${field}: ${reason}`);
    this.name = 'LmArgumentError';
  }
}

/** Thrown when a model directory is missing, incomplete or malformed (the message names the file and problem). */
export class ModelDirectoryError extends Error {
  constructor(
    readonly directory: string,
    readonly reason: string,
  ) {
    super(`model directory ${directory}: ${reason}`);
    this.name = 'ModelDirectoryError';
  }
}

/** Thrown when work stops because its AbortSignal fired (a client went away or a deadline passed). */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError(signal.reason instanceof Error ? signal.reason.message : 'cancelled');
}
