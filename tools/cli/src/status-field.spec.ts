import * as grpc from '@grpc/grpc-js';
import { CoordinatorService, DESCRIPTOR_SET_PATH, type GetRunRequest } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { STATUS_DETAILS_KEY, encodeBadRequestStatus, startServer, type RunningServer, type ServiceBinding } from '@alignment/service-kit';
import { main } from './main';

// Issue 13: the CLI names the field of an INVALID_ARGUMENT from the google.rpc.BadRequest details, and from the
// `invalid-field` trailer when a service of the release before sends only that. A real server on loopback with a
// test double of the coordinator's GetRun.
const binding: ServiceBinding = {
  definition: CoordinatorService as unknown as ServiceBinding['definition'],
  handlers: {
    ...Object.fromEntries(Object.keys(CoordinatorService).map((key) => [key, async () => Promise.reject(new Error(`${key}: not used by this test`))])),
    getRun: async (request: GetRunRequest) => {
      if (request.runId === 'bad') throw new InvalidArgumentError('run_id', 'must be a valid run id');
      const metadata = new grpc.Metadata();
      if (request.runId === 'details-only') {
        // BadRequest details alone: the CLI must read them, not the trailer.
        const details = 'invalid spec.loss.beta: must be > 0';
        metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeBadRequestStatus(grpc.status.INVALID_ARGUMENT, details, [{ field: 'spec.loss.beta', description: 'must be > 0' }])));
        throw Object.assign(new Error(details), { code: grpc.status.INVALID_ARGUMENT, details, metadata });
      }
      // A service of the release before: the field only in the `invalid-field` trailer, no BadRequest.
      metadata.set('invalid-field', 'run_id');
      throw Object.assign(new Error('old'), { code: grpc.status.INVALID_ARGUMENT, details: 'invalid run_id: old server', metadata });
    },
  },
};

let running: RunningServer;
beforeAll(async () => {
  running = await startServer({ name: 'cli-status-test', port: 0, host: '127.0.0.1', bindings: [binding], descriptorSetPath: DESCRIPTOR_SET_PATH, drainTimeoutMs: 1_000 });
});
afterAll(() => running.shutdown());

async function cli(...argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: () => undefined },
    stderr: { write: (t: string) => (stderr += t) },
    env: { ALIGNMENT_COORDINATOR: running.address },
  });
  return { code, stderr };
}

describe('a refused call names the field', () => {
  it('from the BadRequest details', async () => {
    expect(await cli('get', 'bad')).toEqual({ code: 1, stderr: 'alignment: INVALID_ARGUMENT: invalid run_id: must be a valid run id [field run_id]\n' });
    expect(await cli('get', 'details-only')).toEqual({ code: 1, stderr: 'alignment: INVALID_ARGUMENT: invalid spec.loss.beta: must be > 0 [field spec.loss.beta]\n' });
  });

  it('from the invalid-field trailer when there are no details', async () => {
    expect(await cli('get', 'old')).toEqual({ code: 1, stderr: 'alignment: INVALID_ARGUMENT: invalid run_id: old server [field run_id]\n' });
  });
});
