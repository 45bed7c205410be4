import { InvalidArgumentError } from '@alignment/errors';

/**
 * An argument the runtime cannot use: an invalid sampling parameter, a prompt longer than the model's context, a
 * chat template that refuses the conversation. `field` names the argument relative to the call (e.g. `top_p`,
 * `prompts[3]`, `items[0]`), in the snake_case of the contracts, so a service can prefix it with the request path.
 * It is an InvalidArgumentError, so one the service does not rename reaches the client as INVALID_ARGUMENT as is.
 */
export class LmArgumentError extends InvalidArgumentError {
  constructor(field: string, reason: string) {
    super(field, reason);
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
