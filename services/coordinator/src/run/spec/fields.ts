import { Configuration } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';

// How RunSpec validation reports: every error names the field as `spec.<path in snake_case>` with the reason
// (InvalidArgumentError -> INVALID_ARGUMENT).

export const field = (p: string) => `spec.${p}`;

export function fail(p: string, reason: string): never {
  throw new InvalidArgumentError(field(p), reason);
}

export function check(condition: boolean, p: string, reason: string): void {
  if (!condition) fail(p, reason);
}

export function finite(value: number, p: string): number {
  check(Number.isFinite(value), p, `must be a finite number, got ${value}`);
  return value;
}

export function configName(configuration: Configuration): string {
  return Configuration[configuration] ?? String(configuration);
}
