import { Configuration, rangeViolations, RunSpec } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';

// How RunSpec validation reports: every error names the field as `spec.<path in snake_case>` with the reason
// (InvalidArgumentError -> INVALID_ARGUMENT, with a google.rpc.BadRequest field violation).

export const field = (p: string) => `spec.${p}`;

export function fail(p: string, reason: string): never {
  throw new InvalidArgumentError(field(p), reason);
}

export function check(condition: boolean, p: string, reason: string): void {
  if (!condition) fail(p, reason);
}

/**
 * The single-field ranges of the spec, declared once as buf.validate annotations in proto/alignment/v1 and checked
 * by protovalidate (@alignment/contracts rangeViolations): the first field out of range, in field-number order, as
 * `spec.<proto path>`. The spec/ modules check only what relates fields or needs files.
 */
export function checkRanges(spec: RunSpec): void {
  const [first] = rangeViolations('alignment.v1.RunSpec', RunSpec.encode(spec).finish());
  if (first) fail(first.field, first.description);
}

export function configName(configuration: Configuration): string {
  return Configuration[configuration] ?? String(configuration);
}
