/**
 * One call with raw bytes (identity serializers: the request is exactly the case's bytes), and how its answer is
 * judged: a hang, a wrong code, or a pass.
 */
import * as grpc from '@grpc/grpc-js';
import type { Expectation, RpcInfo } from './model';

export interface CallOutcome {
  /** The status the call ended with; undefined when none came (the hard timer fired). */
  code: grpc.status | undefined;
  details: string;
  /** Messages received (a unary response counts as one). */
  messages: number;
  /** The unary response, or a stream's first message. */
  first?: Buffer;
  elapsedMs: number;
  /** The suite cancelled the stream itself after its first message (a Watch call that would run on). */
  cancelledByUs: boolean;
}

const identity = (b: Buffer) => b;

/** Extra time past the deadline before a call that never got a status is given up (a hang either way). */
const HARD_TIMER_SLACK_MS = 10_000;

/**
 * Sends `bytes` to `rpc` and waits for its status. Streams are read to their end, except with cancelAfterFirst
 * (the Watch calls, which follow a live run or job): then the stream is cancelled once a message has arrived.
 */
export function callRaw(client: grpc.Client, rpc: RpcInfo, bytes: Uint8Array, deadlineMs: number, cancelAfterFirst = false): Promise<CallOutcome> {
  const started = Date.now();
  const request = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const options: grpc.CallOptions = { deadline: started + deadlineMs };
  return new Promise<CallOutcome>((resolve) => {
    let settled = false;
    let messages = 0;
    let first: Buffer | undefined;
    let cancelledByUs = false;
    let call: grpc.ClientUnaryCall | grpc.ClientReadableStream<Buffer> | undefined;
    const finish = (code: grpc.status | undefined, details: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(hardTimer);
      resolve({ code, details, messages, first, elapsedMs: Date.now() - started, cancelledByUs });
    };
    const hardTimer = setTimeout(() => {
      call?.cancel();
      finish(undefined, `no status ${HARD_TIMER_SLACK_MS / 1000} s after the ${deadlineMs / 1000} s deadline`);
    }, deadlineMs + HARD_TIMER_SLACK_MS);

    if (!rpc.streaming) {
      call = client.makeUnaryRequest(rpc.path, identity, identity, request, options, (error, response) => {
        if (response) {
          messages = 1;
          first = response;
        }
        finish(error ? error.code : grpc.status.OK, error ? error.details : '');
      });
      return;
    }
    const stream = client.makeServerStreamRequest(rpc.path, identity, identity, request, options);
    call = stream;
    stream.on('data', (message: Buffer) => {
      messages++;
      first ??= message;
      if (cancelAfterFirst && !cancelledByUs) {
        cancelledByUs = true;
        stream.cancel();
      }
    });
    stream.on('status', (status: grpc.StatusObject) => finish(status.code, status.details));
    // 'error' carries the same status as 'status' (grpc-js emits both for a failed call); listening keeps it from throwing.
    stream.on('error', (error: grpc.ServiceError) => finish(error.code, error.details));
  });
}

/** The codes a bad request may be answered with (anything else is a wrong code; CANCELLED only when the suite cancelled). */
export const EXPECTED_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.PERMISSION_DENIED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAUTHENTICATED,
]);

export type Verdict = { kind: 'pass' } | { kind: 'hang' | 'wrong_code'; reason: string };

export function codeName(code: grpc.status | undefined): string {
  return code === undefined ? 'NO_STATUS' : (grpc.status[code] ?? String(code));
}

/** Judges a call's outcome (a crash is found apart from it: by the process exiting or its health check failing). */
export function classify(expect: Expectation, outcome: CallOutcome): Verdict {
  const { code } = outcome;
  if (code === undefined || code === grpc.status.DEADLINE_EXCEEDED) {
    return { kind: 'hang', reason: `${codeName(code)} after ${outcome.elapsedMs} ms (${outcome.messages} messages)` };
  }
  if (code === grpc.status.CANCELLED && outcome.cancelledByUs) return { kind: 'pass' };
  if (!EXPECTED_CODES.has(code)) return { kind: 'wrong_code', reason: `${codeName(code)} is not an expected answer to a bad request` };
  if (expect === 'reject' && code === grpc.status.OK) return { kind: 'wrong_code', reason: 'OK: the request is invalid and must be refused' };
  if (expect === 'ok' && code !== grpc.status.OK) return { kind: 'wrong_code', reason: `${codeName(code)}: this valid request must succeed` };
  return { kind: 'pass' };
}
