import * as fs from 'node:fs';
import * as path from 'node:path';
import { createFileRegistry, fromBinary, type FileRegistry } from '@bufbuild/protobuf';
import { pathToString } from '@bufbuild/protobuf/reflect';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { createValidator, type Validator, type Violation } from '@bufbuild/protovalidate';

/**
 * The single-field ranges of the contracts, checked where they are declared: the `buf.validate` annotations of
 * proto/alignment/v1/*.proto (learning_rate in (0, 1), rounds at most 20, fractions in [0, 1], ...), evaluated by
 * @bufbuild/protovalidate. The trainer and the Python client check the same annotations with Python's protovalidate
 * (alignment_trainer/api/ranges.py), so a value is refused with the same field path in both languages. Rules that
 * relate fields, or need files, stay in code (services/coordinator/src/run/spec/).
 *
 * The contracts' TypeScript is ts-proto's, which @bufbuild/protovalidate cannot read; the bridge is the wire format:
 * the caller passes the message's bytes (`RunSpec.encode(spec).finish()`), decoded here against the descriptor set
 * (which carries the annotations) into a protobuf-es message.
 */

/** One value outside its range: the field's path in proto names (`seed_training.learning_rate`, `stop[0]`). */
export interface RangeViolation {
  field: string;
  /** What is allowed and what was given, e.g. `must be greater than 0 and less than 1, got -1`. */
  description: string;
}

const DESCRIPTOR_SET = path.join(__dirname, '..', 'gen', 'descriptor_set.binpb');

let loaded: { registry: FileRegistry; validator: Validator } | undefined;

function contracts(): { registry: FileRegistry; validator: Validator } {
  if (!loaded) {
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(DESCRIPTOR_SET)));
    loaded = { registry, validator: createValidator({ registry }) };
  }
  return loaded;
}

/**
 * The range violations of an encoded message of `typeName` (e.g. 'alignment.v1.RunSpec'), in field order; empty when
 * every annotated field is in range. Throws when the type is unknown or a rule cannot be evaluated (a bug, not bad
 * input).
 */
export function rangeViolations(typeName: string, encoded: Uint8Array): RangeViolation[] {
  const { registry, validator } = contracts();
  const schema = registry.getMessage(typeName);
  if (!schema) throw new Error(`${DESCRIPTOR_SET} has no message ${typeName}: run the contracts codegen`);
  const message = fromBinary(schema, encoded);
  const result = validator.validate(schema, message);
  if (result.kind === 'error') throw result.error;
  if (result.kind === 'valid') return [];
  return result.violations.map((v) => ({ field: pathToString(v.field), description: describe(v, message) }));
}

/** The rule's message (it states the allowed range) with the value that broke it. */
function describe(violation: Violation, message: unknown): string {
  const value = valueAt(message, violation);
  return value === undefined ? violation.message : `${violation.message}, got ${value}`;
}

/** The offending scalar, read along the violation's path; undefined where there is none to show. */
function valueAt(message: unknown, violation: Violation): string | undefined {
  let node: unknown = message;
  for (const element of violation.field) {
    if (node === null || typeof node !== 'object') return undefined;
    if (element.kind === 'field') {
      const record = node as Record<string, unknown>;
      const oneof = element.oneof?.localName;
      const group = oneof === undefined ? undefined : (record[oneof] as { case?: string; value?: unknown });
      node = oneof === undefined ? record[element.localName] : group?.case === element.localName ? group.value : undefined;
    } else if (element.kind === 'list_sub') {
      node = Array.isArray(node) ? node[element.index] : undefined;
    } else {
      return undefined;
    }
  }
  if (typeof node === 'string') return JSON.stringify(node);
  return typeof node === 'number' || typeof node === 'bigint' || typeof node === 'boolean' ? String(node) : undefined;
}
