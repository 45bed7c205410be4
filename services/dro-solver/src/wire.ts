import * as os from 'node:os';
import { SolveResponse } from '@alignment/contracts';

/**
 * SolveResponse's per-sample arrays as packed doubles copied in one block. ts-proto writes a repeated double one
 * element at a time, which at N = 4096 costs more than the solve itself; a packed field is exactly the
 * little-endian float64 bytes, so on a little-endian machine the array's memory is the wire format.
 */
const PACKED_DOUBLE_FIELDS = [
  [7, 'movedFraction'],
  [8, 'gradXi'],
  [9, 'surrogateA'],
  [10, 'surrogateB'],
] as const;

function varint(value: number): Uint8Array {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return Uint8Array.from(bytes);
}

export function serializeSolveResponse(response: SolveResponse): Buffer {
  if (os.endianness() !== 'LE') return Buffer.from(SolveResponse.encode(response).finish());
  const rest = SolveResponse.encode({ ...response, movedFraction: [], gradXi: [], surrogateA: [], surrogateB: [] }).finish();
  const parts: Uint8Array[] = [rest];
  for (const [field, key] of PACKED_DOUBLE_FIELDS) {
    const values = response[key];
    if (values.length === 0) continue;
    // Fields may appear in any order on the wire (protobuf encoding spec); parsers merge them into the message.
    parts.push(varint((field << 3) | 2), varint(values.length * 8), new Uint8Array(Float64Array.from(values).buffer));
  }
  return Buffer.concat(parts);
}
