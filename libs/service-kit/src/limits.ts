/**
 * Message-size limits, set on both ends (servers and clients): grpc-js's default receive limit is 4 MiB, too small
 * for a DRO solve of 10^6 samples (its response is about 40 MB). GRPC_MAX_MESSAGE_BYTES overrides the default of
 * 64 MiB (issue 12: smaller than the 128 MiB it was, which let one request hold 16 million samples).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export function maxMessageBytes(): number {
  const fromEnv = Number(process.env.GRPC_MAX_MESSAGE_BYTES);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_MAX_MESSAGE_BYTES;
}

export function messageSizeOptions(): Record<string, number> {
  const limit = maxMessageBytes();
  return { 'grpc.max_receive_message_length': limit, 'grpc.max_send_message_length': limit };
}
