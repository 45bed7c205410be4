import * as grpc from '@grpc/grpc-js';
import { context, trace } from '@opentelemetry/api';
import {
  DESCRIPTOR_SET_PATH,
  DroSolverClient,
  DroSolverService,
  GeneratorService,
  type SolveRequest,
  type SolveResponse,
  SolveRequest as SolveRequestMsg,
} from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { initTracing, memorySpans, resetMemorySpans, tracer } from './tracing';
import { startServer, type RunningServer, type ServiceBinding } from './server';
import { createClient, unaryCall } from './client';
import { freePort, grpcurl } from '@alignment/service-kit/testing';

// Test doubles for the domain: the kit is tested with real contracts and a real server on loopback.
let release: (() => void) | undefined;
const handlers = {
  solve: async (request: SolveRequest): Promise<SolveResponse> => {
    if (request.delta <= 0) throw new InvalidArgumentError('delta', 'must be in (0, 0.5)');
    if (request.delta === 0.25) throw new Error('boom');
    if (request.delta === 0.125) await new Promise<void>((resolve) => (release = resolve));
    if (request.delta === 0.0625) await new Promise(() => undefined); // never answers
    const response = { value: request.logXi.length } as SolveResponse;
    return { ...emptyResponse(), ...response, lambdaStar: request.logXi.reduce((a, b) => a + b, 0) };
  },
};

function emptyResponse(): SolveResponse {
  return {
    value: 0, ermValue: 0, lambdaStar: 0, lambdaStarLeft: 0, epsilon: 0, epsilonSat: 0, saturated: false,
    movedFraction: [], gradXi: [], surrogateA: [], surrogateB: [], atoms: [], diagnostics: undefined, warnings: [],
  };
}

const binding: ServiceBinding = { definition: DroSolverService as unknown as ServiceBinding['definition'], handlers };
const generatorBinding: ServiceBinding = {
  definition: GeneratorService as unknown as ServiceBinding['definition'],
  handlers: {
    generate: async (_request: unknown, call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.write({ event: { $case: 'progress', value: { done: 1, total: 2, unit: 'prompts', tokensPerSecond: 0, etaSeconds: 0 } } });
    },
  },
};

function request(partial: Partial<SolveRequest>): SolveRequest {
  return SolveRequestMsg.fromPartial(partial);
}

describe('startServer', () => {
  let running: RunningServer;
  let client: DroSolverClient;

  beforeAll(async () => {
    initTracing('service-kit-test', 'memory');
    running = await startServer({
      name: 'kit-test',
      port: 0,
      host: '127.0.0.1',
      bindings: [binding, generatorBinding],
      descriptorSetPath: DESCRIPTOR_SET_PATH,
      drainTimeoutMs: 5_000,
    });
    client = createClient(DroSolverClient, running.address, { defaultDeadlineMs: 5_000 });
  });

  afterAll(async () => {
    client.close();
    await running.shutdown();
  });

  it('answers a unary call through the handler', async () => {
    const response = await unaryCall(client, client.solve, request({ logXi: [-1, -2], delta: 0.1 }));
    expect(response.value).toBe(2);
    expect(response.lambdaStar).toBe(-3);
  });

  it('maps InvalidArgumentError to INVALID_ARGUMENT naming the field, and keeps serving', async () => {
    const error = await unaryCall(client, client.solve, request({ logXi: [-1], delta: 0 })).catch((e) => e);
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('invalid delta: must be in (0, 0.5)');
    expect(error.metadata.get('invalid-field')).toEqual(['delta']);
    const ok = await unaryCall(client, client.solve, request({ logXi: [-1], delta: 0.1 }));
    expect(ok.value).toBe(1);
  });

  it('maps unexpected errors to INTERNAL without crashing', async () => {
    const error = await unaryCall(client, client.solve, request({ logXi: [-1], delta: 0.25 })).catch((e) => e);
    expect(error.code).toBe(grpc.status.INTERNAL);
    expect(error.details).toMatch(/^internal error: boom \(correlation id [0-9a-f-]{36}\)$/);
  });

  // Issue 12: grpc-js answers bytes that do not decode with INTERNAL "Error deserializing request".
  it('answers request bytes that are not a valid message with INVALID_ARGUMENT naming the method, unary and streaming', async () => {
    const raw = new grpc.Client(running.address, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    const garbage = Buffer.from([0xff, 0xff, 0xff]); // a varint that never ends
    try {
      const unary = await new Promise<grpc.ServiceError>((resolve) =>
        raw.makeUnaryRequest('/alignment.v1.DroSolver/Solve', identity, identity, garbage, (err) => resolve(err!)),
      );
      expect(unary.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(unary.details).toMatch(/^invalid request: is not a valid alignment.v1.DroSolver\/Solve request message/);
      expect(unary.metadata.get('invalid-field')).toEqual(['request']);
      const stream = raw.makeServerStreamRequest('/alignment.v1.Generator/Generate', identity, identity, garbage);
      const streamed = await new Promise<grpc.ServiceError>((resolve) => {
        stream.on('data', () => undefined);
        stream.on('error', resolve);
      });
      expect(streamed.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(streamed.details).toContain('alignment.v1.Generator/Generate');
    } finally {
      raw.close();
    }
    const ok = await unaryCall(client, client.solve, request({ logXi: [-1], delta: 0.1 }));
    expect(ok.value).toBe(1);
  });

  it('accepts messages far above grpc-js default 4 MiB limit on both ends', async () => {
    const logXi = new Array(1_000_000).fill(-0.5); // ~9 MB on the wire
    const response = await unaryCall(client, client.solve, request({ logXi, delta: 0.1 }));
    expect(response.value).toBe(1_000_000);
  });

  it('applies the default deadline to a call that sets none', async () => {
    const quick = createClient(DroSolverClient, running.address, { defaultDeadlineMs: 300 });
    const started = Date.now();
    const error = await unaryCall(quick, quick.solve, request({ logXi: [-1], delta: 0.0625 })).catch((e) => e);
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(3_000);
    quick.close();
  });

  it('continues the caller trace: the server span is a child of the client span', async () => {
    resetMemorySpans();
    const parent = tracer().startSpan('test-parent');
    await context.with(trace.setSpan(context.active(), parent), () =>
      unaryCall(client, client.solve, request({ logXi: [-1], delta: 0.1 })),
    );
    parent.end();
    const spans = memorySpans();
    const server = spans.find((s) => s.name === 'alignment.v1.DroSolver/Solve' && s.kind === 1);
    const clientSpan = spans.find((s) => s.name === 'alignment.v1.DroSolver/Solve' && s.kind === 2);
    expect(server).toBeDefined();
    expect(clientSpan).toBeDefined();
    expect(server!.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(clientSpan!.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(server!.parentSpanContext?.spanId).toBe(clientSpan!.spanContext().spanId);
  });

  describe('with grpcurl', () => {
    const addr = () => running.address;

    it('lists the services by reflection', async () => {
      const result = await grpcurl(['-plaintext', addr(), 'list']);
      expect(result.stderr).toBe('');
      expect(result.stdout.split('\n')).toEqual(
        expect.arrayContaining(['alignment.v1.DroSolver', 'alignment.v1.Generator', 'grpc.health.v1.Health']),
      );
    });

    it('describes a message from a proto that imports another file', async () => {
      const result = await grpcurl(['-plaintext', addr(), 'describe', 'alignment.v1.GenerateRequest']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('.alignment.v1.GenerationParams params = 4;');
    });

    it("reports SERVING for the '' key and for each service", async () => {
      const all = await grpcurl(['-plaintext', addr(), 'grpc.health.v1.Health/Check']);
      expect(JSON.parse(all.stdout)).toEqual({ status: 'SERVING' });
      const one = await grpcurl(['-plaintext', '-d', '{"service":"alignment.v1.DroSolver"}', addr(), 'grpc.health.v1.Health/Check']);
      expect(JSON.parse(one.stdout)).toEqual({ status: 'SERVING' });
    });
  });
});

describe('graceful shutdown', () => {
  it('goes NOT_SERVING, lets an in-flight call finish, then refuses new calls', async () => {
    const running = await startServer({
      name: 'kit-drain',
      port: 0,
      host: '127.0.0.1',
      bindings: [binding],
      descriptorSetPath: DESCRIPTOR_SET_PATH,
      drainTimeoutMs: 5_000,
    });
    const client = createClient(DroSolverClient, running.address, { retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } });
    release = undefined;
    const inFlight = unaryCall(client, client.solve, request({ logXi: [-1, -1, -1], delta: 0.125 }));
    await new Promise((r) => setTimeout(r, 200));
    expect(release).toBeDefined();
    const stopped = running.shutdown();
    const health = await grpcurl(['-plaintext', running.address, 'grpc.health.v1.Health/Check']).catch(() => undefined);
    // Either the probe saw NOT_SERVING, or the listener was already closed to new connections: never SERVING.
    expect(health?.stdout ?? '').not.toContain('"SERVING"');
    release!();
    await expect(inFlight).resolves.toMatchObject({ value: 3 });
    await stopped;
    const after = await unaryCall(client, client.solve, request({ logXi: [-1], delta: 0.1 }), { deadlineMs: 1_000 }).catch((e) => e);
    expect(after.code).toBe(grpc.status.UNAVAILABLE);
    client.close();
  });
});

describe('client retries', () => {
  it('retries UNAVAILABLE until a server that starts late answers', async () => {
    const port = await freePort();
    const client = createClient(DroSolverClient, `127.0.0.1:${port}`, {
      retry: { maxAttempts: 8, initialBackoffMs: 100, maxBackoffMs: 400 },
    });
    const call = unaryCall(client, client.solve, request({ logXi: [-1, -1], delta: 0.1 }), { deadlineMs: 10_000 });
    await new Promise((r) => setTimeout(r, 250));
    const running = await startServer({
      name: 'kit-late', port, host: '127.0.0.1', bindings: [binding], descriptorSetPath: DESCRIPTOR_SET_PATH,
    });
    await expect(call).resolves.toMatchObject({ value: 2 });
    client.close();
    await running.shutdown();
  });

  it('spreads calls over every address the target resolves to (replicas behind a headless Service)', async () => {
    const seen = [0, 0];
    const replica = (k: number): ServiceBinding => ({
      definition: binding.definition,
      handlers: { solve: async () => ({ ...emptyResponse(), value: (seen[k] += 1) }) },
    });
    const servers = await Promise.all(
      [0, 1].map((k) => startServer({ name: `kit-replica-${k}`, port: 0, host: '127.0.0.1', bindings: [replica(k)], descriptorSetPath: DESCRIPTOR_SET_PATH })),
    );
    const client = createClient(DroSolverClient, `ipv4:${servers.map((s) => s.address).join(',')}`);
    for (let i = 0; i < 10; i++) await unaryCall(client, client.solve, request({ logXi: [-1], delta: 0.1 }));
    expect(seen[0] + seen[1]).toBe(10);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(3);
    client.close();
    await Promise.all(servers.map((s) => s.shutdown()));
  });

  it('gives up with UNAVAILABLE after the bounded attempts', async () => {
    const port = await freePort();
    const client = createClient(DroSolverClient, `127.0.0.1:${port}`, {
      retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 100 },
    });
    const started = Date.now();
    const error = await unaryCall(client, client.solve, request({ logXi: [-1], delta: 0.1 }), { deadlineMs: 10_000 }).catch((e) => e);
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140); // two backoffs: 50 + 100 ms
    client.close();
  });
});
