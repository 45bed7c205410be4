import * as grpc from '@grpc/grpc-js';
import { DESCRIPTOR_SET_PATH, DroSolverClient, DroSolverService, type SolveRequest, SolveRequest as SolveRequestMsg } from '@alignment/contracts';
import { BAD_REQUEST_TYPE_URL, STATUS_DETAILS_KEY, decodeRichStatus, encodeBadRequestStatus, fieldViolationsOf } from './bad-request';
import { createClient, unaryCall } from './client';
import { startServer, type RunningServer, type ServiceBinding } from './server';
import { requireFinite } from './validation';

// Issue 13: an INVALID_ARGUMENT naming a field carries a google.rpc.Status with BadRequest details in the
// `grpc-status-details-bin` trailer. A real server on loopback; the handler is a test double that checks one number
// with the kit's own requireFinite, as the generator and judge check theirs.
const binding: ServiceBinding = {
  definition: DroSolverService as unknown as ServiceBinding['definition'],
  handlers: {
    solve: async (request: SolveRequest) => {
      requireFinite('delta', request.delta);
      throw new Error('unreachable in these tests');
    },
  },
};

let running: RunningServer;
let client: DroSolverClient;

beforeAll(async () => {
  running = await startServer({ name: 'bad-request-test', port: 0, host: '127.0.0.1', bindings: [binding], descriptorSetPath: DESCRIPTOR_SET_PATH, drainTimeoutMs: 1_000 });
  client = createClient(DroSolverClient, running.address, { defaultDeadlineMs: 5_000 });
});

afterAll(async () => {
  client.close();
  await running.shutdown();
});

/** Whether `text` appears in the bytes as they are: a check of the type URL that does not go through the decoder. */
function containsAscii(bytes: Uint8Array, text: string): boolean {
  return Buffer.from(bytes).includes(Buffer.from(text, 'utf8'));
}

describe('google.rpc.BadRequest details', () => {
  it('a NaN number: INVALID_ARGUMENT whose trailer decodes to Status -> Any -> BadRequest naming the field', async () => {
    const error: grpc.ServiceError = await unaryCall(client, client.solve, SolveRequestMsg.fromPartial({ logXi: [-1], delta: Number.NaN })).catch((e) => e);
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    const [bytes] = error.metadata.get(STATUS_DETAILS_KEY);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(containsAscii(bytes as Buffer, BAD_REQUEST_TYPE_URL)).toBe(true);
    expect(decodeRichStatus(bytes as Buffer)).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      message: 'invalid delta: must be a finite number, got NaN',
      fieldViolations: [{ field: 'delta', description: 'must be a finite number, got NaN' }],
    });
    expect(error.details).toBe('invalid delta: must be a finite number, got NaN');
    // Kept for one release alongside the BadRequest.
    expect(error.metadata.get('invalid-field')).toEqual(['delta']);
  });

  it('request bytes that do not decode carry a BadRequest naming `request`', async () => {
    const raw = new grpc.Client(running.address, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    try {
      const error = await new Promise<grpc.ServiceError>((resolve) =>
        raw.makeUnaryRequest('/alignment.v1.DroSolver/Solve', identity, identity, Buffer.from([0xff, 0xff, 0xff]), (err) => resolve(err!)),
      );
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(fieldViolationsOf(error.metadata).map((v) => v.field)).toEqual(['request']);
    } finally {
      raw.close();
    }
  });

  it('encodes the bytes protoc would: Status{code, message, Any{type_url, BadRequest{FieldViolation{field, description}}}}', () => {
    const bytes = encodeBadRequestStatus(3, 'm', [{ field: 'f', description: 'd' }]);
    const fv = [0x0a, 1, 0x66, 0x12, 1, 0x64];
    const badRequest = [0x0a, fv.length, ...fv];
    const url = [...Buffer.from(BAD_REQUEST_TYPE_URL)];
    const any = [0x0a, url.length, ...url, 0x12, badRequest.length, ...badRequest];
    expect([...bytes]).toEqual([0x08, 3, 0x12, 1, 0x6d, 0x1a, any.length, ...any]);
  });

  it('reads no violations from a trailer that is absent or not a Status', () => {
    expect(fieldViolationsOf(undefined)).toEqual([]);
    expect(fieldViolationsOf(new grpc.Metadata())).toEqual([]);
    const garbage = new grpc.Metadata();
    garbage.set(STATUS_DETAILS_KEY, Buffer.from([0xff, 0xff, 0xff]));
    expect(fieldViolationsOf(garbage)).toEqual([]);
  });
});
