import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

// The standard rich error model (issue 13): an INVALID_ARGUMENT naming a field also carries a serialized
// google.rpc.Status in the `grpc-status-details-bin` trailer, its details one Any holding a google.rpc.BadRequest.
// @bufbuild/protobuf ships no google.rpc types, so the few fields are written and read here by their numbers:
// Status{1 int32 code, 2 string message, 3 repeated Any details}, Any{1 string type_url, 2 bytes value},
// BadRequest{1 repeated FieldViolation field_violations}, FieldViolation{1 string field, 2 string description}.
// The trainer writes the same bytes (services/trainer/src/alignment_trainer/api/bad_request.py).

/** The trailer gRPC's rich error model puts the serialized google.rpc.Status in. */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

/** The Any type URL of google.rpc.BadRequest. */
export const BAD_REQUEST_TYPE_URL = 'type.googleapis.com/google.rpc.BadRequest';

/** One google.rpc.BadRequest.FieldViolation: the field's path (`spec.loss.wdro.delta`) and what is wrong with it. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** The parts of a google.rpc.Status read back from a trailer. */
export interface RichStatus {
  code: number;
  message: string;
  fieldViolations: FieldViolation[];
}

/** A serialized google.rpc.Status of `code` and `message` whose details are one BadRequest of `violations`. */
export function encodeBadRequestStatus(code: number, message: string, violations: FieldViolation[]): Uint8Array {
  const badRequest = new BinaryWriter();
  for (const violation of violations) {
    badRequest.tag(1, WireType.LengthDelimited).fork();
    badRequest.tag(1, WireType.LengthDelimited).string(violation.field);
    badRequest.tag(2, WireType.LengthDelimited).string(violation.description);
    badRequest.join();
  }
  const any = new BinaryWriter();
  any.tag(1, WireType.LengthDelimited).string(BAD_REQUEST_TYPE_URL);
  any.tag(2, WireType.LengthDelimited).bytes(badRequest.finish());
  const status = new BinaryWriter();
  status.tag(1, WireType.Varint).int32(code);
  status.tag(2, WireType.LengthDelimited).string(message);
  status.tag(3, WireType.LengthDelimited).bytes(any.finish());
  return status.finish();
}

/**
 * A serialized google.rpc.Status read back: its code, message and the field violations of every BadRequest in its
 * details (other details are skipped). Throws on bytes that are not a Status.
 */
export function decodeRichStatus(bytes: Uint8Array): RichStatus {
  const result: RichStatus = { code: 0, message: '', fieldViolations: [] };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wire] = reader.tag();
    if (no === 1 && wire === WireType.Varint) result.code = reader.int32();
    else if (no === 2 && wire === WireType.LengthDelimited) result.message = reader.string();
    else if (no === 3 && wire === WireType.LengthDelimited) result.fieldViolations.push(...anyViolations(reader.bytes()));
    else reader.skip(wire, no);
  }
  return result;
}

function anyViolations(bytes: Uint8Array): FieldViolation[] {
  let typeUrl = '';
  let value: Uint8Array = new Uint8Array();
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wire] = reader.tag();
    if (no === 1 && wire === WireType.LengthDelimited) typeUrl = reader.string();
    else if (no === 2 && wire === WireType.LengthDelimited) value = reader.bytes();
    else reader.skip(wire, no);
  }
  return typeUrl === BAD_REQUEST_TYPE_URL ? readMessages(value, 1).map(violation) : [];
}

function violation(bytes: Uint8Array): FieldViolation {
  const result: FieldViolation = { field: '', description: '' };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wire] = reader.tag();
    if (no === 1 && wire === WireType.LengthDelimited) result.field = reader.string();
    else if (no === 2 && wire === WireType.LengthDelimited) result.description = reader.string();
    else reader.skip(wire, no);
  }
  return result;
}

function readMessages(bytes: Uint8Array, fieldNo: number): Uint8Array[] {
  const found: Uint8Array[] = [];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wire] = reader.tag();
    if (no === fieldNo && wire === WireType.LengthDelimited) found.push(reader.bytes());
    else reader.skip(wire, no);
  }
  return found;
}

/**
 * The field violations in a call's `grpc-status-details-bin` trailer, or none when it has no such trailer or it does
 * not decode. `metadata` is a grpc-js Metadata (typed loosely so callers need not share its version).
 */
export function fieldViolationsOf(metadata: { get(key: string): unknown[] } | undefined): FieldViolation[] {
  const value = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(value instanceof Uint8Array)) return [];
  try {
    return decodeRichStatus(value).fieldViolations;
  } catch {
    return [];
  }
}
