import * as grpc from '@grpc/grpc-js';
import { DESCRIPTOR_SET_PATH, GenerateRequest, GeneratorClient, GeneratorService } from '@alignment/contracts';
import { CancelledError, InvalidArgumentError } from '@alignment/errors';
import { createClient, readAll } from './client';
import { callAbortSignal, startServer, type RunningServer, type ServiceBinding } from './server';
import { inShard, requireShard } from './validation';

// A server-streaming handler whose behaviour the request's output_uri selects.
let aborted: Promise<void> | undefined;
const binding: ServiceBinding = {
  definition: GeneratorService as unknown as ServiceBinding['definition'],
  handlers: {
    generate: async (request: GenerateRequest, call: grpc.ServerWritableStream<GenerateRequest, unknown>) => {
      call.write({ event: { $case: 'progress', value: { done: 1, total: 2, unit: 'prompts', tokensPerSecond: 0, etaSeconds: 0 } } });
      if (request.outputUri === 'invalid') throw new InvalidArgumentError('params.top_p', 'must be in (0, 1]');
      if (request.outputUri === 'boom') throw new Error('boom');
      if (request.outputUri === 'wait') {
        const signal = callAbortSignal(call);
        aborted = new Promise((resolve) => signal.addEventListener('abort', () => resolve()));
        await aborted;
        throw new CancelledError();
      }
    },
  },
};

describe('server streams', () => {
  let running: RunningServer;
  let client: GeneratorClient;
  beforeAll(async () => {
    running = await startServer({ name: 'kit-stream', port: 0, host: '127.0.0.1', bindings: [binding], descriptorSetPath: DESCRIPTOR_SET_PATH });
    client = createClient(GeneratorClient, running.address, { defaultDeadlineMs: 5_000 });
  });
  afterAll(async () => {
    client.close();
    await running.shutdown();
  });

  const call = (outputUri: string) => client.generate(GenerateRequest.fromPartial({ outputUri }));

  it('ends a stream whose handler throws with the mapped status, after the messages already written', async () => {
    const messages: unknown[] = [];
    const stream = call('invalid');
    stream.on('data', (m) => messages.push(m));
    const error = (await readAll(stream).catch((e) => e)) as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('invalid params.top_p: must be in (0, 1]');
    expect(error.metadata.get('invalid-field')).toEqual(['params.top_p']);
    expect(messages).toHaveLength(1);
    expect(((await readAll(call('boom')).catch((e) => e)) as grpc.ServiceError).code).toBe(grpc.status.INTERNAL);
    expect(await readAll(call('ok'))).toHaveLength(1);
  });

  it('aborts the handler’s signal when the client cancels', async () => {
    aborted = undefined;
    const stream = call('wait');
    const ended = readAll(stream).catch((e) => e);
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.cancel();
    expect(((await ended) as grpc.ServiceError).code).toBe(grpc.status.CANCELLED);
    await expect(aborted).resolves.toBeUndefined();
  });
});

describe('shards', () => {
  it('default to the whole set and reject an index outside the count', () => {
    expect(requireShard('shard', undefined)).toEqual({ index: 0, count: 1 });
    expect(requireShard('shard', { index: 0, count: 0 })).toEqual({ index: 0, count: 1 });
    expect(requireShard('shard', { index: 2, count: 3 })).toEqual({ index: 2, count: 3 });
    expect(() => requireShard('shard', { index: 3, count: 3 })).toThrow(new InvalidArgumentError('shard.index', 'must be < shard.count (3), got 3'));
    expect(() => requireShard('shard', { index: 1, count: 1 })).toThrow(InvalidArgumentError);
    expect([0, 1, 2, 3, 4, 5].filter((i) => inShard(i, { index: 1, count: 3 }))).toEqual([1, 4]);
  });
});
