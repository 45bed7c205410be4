import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatusMap } from 'grpc-health-check';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { createLogger, type Logger } from './logger';
import { InvalidArgumentError } from '@alignment/errors';
import { toServiceError } from './error-status';
import { extractContext, flushTracing, initTracing, shutdownTracing, tracer } from './tracing';
import { addReflection } from './reflection';
import { messageSizeOptions } from './limits';
import { checkPlaintextBind, tlsFromEnv, type TlsSettings } from './tls-config';
import { identityInterceptor, serverCredentials } from './tls';
import { healthPortFromEnv, startHealthServer } from './health-port';

/** Unary handler: resolve with the response; throw @alignment/errors' InvalidArgumentError & co. for client errors. */
export type UnaryHandler<Req, Res> = (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;
/** Server-streaming handler: write responses with call.write; resolving ends the stream. */
export type ServerStreamHandler<Req, Res> = (request: Req, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>;

type MethodDefinition = grpc.MethodDefinition<unknown, unknown> & { path: string };

export interface ServiceBinding {
  /** A ts-proto service definition (e.g. DroSolverService). */
  definition: Record<string, MethodDefinition>;
  /** Handlers by method key of the definition (camelCase, as ts-proto names them). */
  handlers: Record<string, UnaryHandler<any, any> | ServerStreamHandler<any, any>>;
}

export interface ServerOptions {
  /** Short service name for logs and traces, e.g. "dro-solver". */
  name: string;
  /** Port on all interfaces; 0 picks a free one (tests). */
  port: number;
  /**
   * Host to bind; default $HOST, else 0.0.0.0 with TLS (in a pod) and 127.0.0.1 without (plaintext stays on this
   * machine; a non-loopback plaintext bind is refused unless ALLOW_PLAINTEXT=1).
   */
  host?: string;
  bindings: ServiceBinding[];
  /** Descriptor set for reflection (contracts' DESCRIPTOR_SET_PATH). */
  descriptorSetPath: string;
  /** Install SIGTERM/SIGINT handlers that shut down gracefully and exit the process. Default false. */
  handleSignals?: boolean;
  /** How long in-flight calls may run after a shutdown starts before they are cancelled. Default 10 s. */
  drainTimeoutMs?: number;
  /** Transport security and caller identities; default from the environment (tls-config.ts, TLS_*). */
  tls?: TlsSettings;
  /** A plaintext port serving only grpc.health.v1 (Kubernetes probes; health-port.ts); default $HEALTH_PORT, else none. */
  healthPort?: number;
  logger?: Logger;
}

export interface RunningServer {
  server: grpc.Server;
  port: number;
  address: string;
  health: HealthImplementation;
  /** The health-only port, when one was asked for. */
  healthPort?: number;
  logger: Logger;
  /** NOT_SERVING -> drain in-flight calls (up to drainTimeoutMs) -> stop. */
  shutdown(): Promise<void>;
}

function serviceNameOf(definition: Record<string, MethodDefinition>): string {
  const first = Object.values(definition)[0];
  return first.path.split('/')[1];
}

/**
 * What a method's request deserializer returns for bytes that do not decode as its message. grpc-js answers a
 * deserializer that throws with INTERNAL; this marker lets the handler wrapper answer INVALID_ARGUMENT instead.
 */
class MalformedRequest {
  constructor(readonly reason: string) {}
}

/** The method with a deserializer that returns MalformedRequest instead of throwing. */
function tolerantMethod(method: MethodDefinition): MethodDefinition {
  const decode = method.requestDeserialize;
  return {
    ...method,
    requestDeserialize: (bytes: Buffer) => {
      try {
        return decode(bytes);
      } catch (error) {
        return new MalformedRequest(error instanceof Error ? error.message : String(error));
      }
    },
  };
}

function wrap(method: MethodDefinition, handler: ServiceBinding['handlers'][string], logger: Logger): grpc.UntypedHandleCall {
  const rpc = method.path.slice(1);
  const startSpan = (metadata: grpc.Metadata) => {
    const parent = extractContext(metadata);
    const span = tracer().startSpan(rpc, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': rpc } }, parent);
    return { span, ctx: trace.setSpan(parent, span) };
  };
  /** Ends the span; for a failed call, the status the client gets (INTERNAL ones carry a correlation id, also logged). */
  const finish = (span: ReturnType<typeof startSpan>['span'], error?: unknown): Partial<grpc.ServiceError> | undefined => {
    let serviceError: Partial<grpc.ServiceError> | undefined;
    if (error) {
      serviceError = toServiceError(error);
      if (serviceError.code === grpc.status.INTERNAL) {
        const correlationId = randomUUID();
        serviceError = { ...serviceError, details: `${serviceError.details} (correlation id ${correlationId})` };
        logger.error({ err: error, rpc, correlation_id: correlationId }, 'request failed');
      } else {
        logger.info({ rpc, code: grpc.status[serviceError.code ?? 2], details: serviceError.details }, 'request rejected');
      }
      span.setAttribute('rpc.grpc.status_code', serviceError.code ?? grpc.status.UNKNOWN);
      span.setStatus({ code: SpanStatusCode.ERROR, message: serviceError.details });
    } else {
      span.setAttribute('rpc.grpc.status_code', grpc.status.OK);
    }
    span.end();
    return serviceError;
  };
  /** Runs the handler, unless the request's bytes did not decode. */
  const handle = <R>(run: (request: unknown) => Promise<R>, request: unknown): Promise<R> =>
    request instanceof MalformedRequest
      ? Promise.reject(new InvalidArgumentError('request', `is not a valid ${rpc} request message (${request.reason})`))
      : run(request);

  if (method.responseStream && !method.requestStream) {
    const streamHandler = handler as ServerStreamHandler<unknown, unknown>;
    return ((call: grpc.ServerWritableStream<unknown, unknown>) => {
      const { span, ctx } = startSpan(call.metadata);
      context.with(ctx, () => handle((r) => streamHandler(r, call), call.request)).then(
        () => {
          finish(span);
          call.end();
        },
        (error) => {
          const serviceError = finish(span, error)!;
          // 'error' is how a grpc-js server stream ends with a status: its listener records the status and ends
          // the stream. destroy() would tear the stream down without ever sending one, and the client would hang.
          if (!call.cancelled) call.emit('error', serviceError);
        },
      );
    }) as grpc.UntypedHandleCall;
  }
  if (!method.requestStream && !method.responseStream) {
    const unaryHandler = handler as UnaryHandler<unknown, unknown>;
    return ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const { span, ctx } = startSpan(call.metadata);
      context.with(ctx, () => handle((r) => unaryHandler(r, call), call.request)).then(
        (response) => {
          finish(span);
          callback(null, response);
        },
        (error) => {
          callback(finish(span, error) as grpc.ServiceError);
        },
      );
    }) as grpc.UntypedHandleCall;
  }
  throw new Error(`${rpc}: client-streaming methods are not used by alignment.v1`);
}

/**
 * An AbortSignal that fires when the call ends early: the client cancelled, went away, or its deadline passed
 * (grpc-js reports all three as the call's 'cancelled' event). Long handlers pass it to their work so that it stops.
 */
export function callAbortSignal(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): AbortSignal {
  const controller = new AbortController();
  if (call.cancelled) controller.abort();
  else call.once('cancelled', () => controller.abort());
  return controller.signal;
}

/**
 * Starts a gRPC server with what every alignment service needs: grpc.health.v1 (the '' key plus each service,
 * for Kubernetes `grpc:` probes), reflection for grpcurl, a server span per call continuing the caller's W3C
 * trace, domain errors mapped to status codes, message-size limits, and graceful shutdown.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  initTracing(options.name);
  const logger = options.logger ?? createLogger(options.name);
  const tls = options.tls ?? tlsFromEnv();
  const host = options.host ?? (process.env.HOST || (tls.certFile ? '0.0.0.0' : '127.0.0.1'));
  // Before anything is bound: plaintext on a non-loopback address is refused unless ALLOW_PLAINTEXT=1.
  const plaintextLine = tls.certFile ? undefined : checkPlaintextBind(host);
  const server = new grpc.Server({
    ...messageSizeOptions(),
    ...(tls.clientAuth !== 'none' ? { interceptors: [identityInterceptor(tls, logger)] } : {}),
  });
  const serviceNames = options.bindings.map((b) => serviceNameOf(b.definition));

  for (const binding of options.bindings) {
    const implementation: grpc.UntypedServiceImplementation = {};
    const definition: Record<string, MethodDefinition> = {};
    for (const [key, method] of Object.entries(binding.definition)) {
      const handler = binding.handlers[key];
      if (!handler) throw new Error(`${method.path}: no handler bound for '${key}'`);
      implementation[key] = wrap(method, handler, logger);
      definition[key] = tolerantMethod(method);
    }
    server.addService(definition as unknown as grpc.ServiceDefinition, implementation);
  }

  const statusMap: ServingStatusMap = { '': 'SERVING' };
  for (const name of serviceNames) statusMap[name] = 'SERVING';
  const health = new HealthImplementation(statusMap);
  health.addToServer(server);
  addReflection(server, options.descriptorSetPath, [...serviceNames, 'grpc.health.v1.Health']);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, serverCredentials(tls, logger), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  const address = `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  const requestedHealthPort = options.healthPort ?? healthPortFromEnv();
  const healthServer = requestedHealthPort === undefined ? undefined : await startHealthServer(health, host, requestedHealthPort);
  // One line says how callers reach the service: plaintext on loopback rides on 'serving'; off loopback it warns.
  if (plaintextLine?.level === 'warn') logger.warn(plaintextLine.message);
  const transport = plaintextLine
    ? { transport: plaintextLine.message }
    : { transport: 'tls', client_auth: tls.clientAuth, allowed_clients: tls.allowedClients, cert_file: tls.certFile };
  logger.info({ port, health_port: healthServer?.port, services: serviceNames, ...transport }, 'serving');

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      for (const name of ['', ...serviceNames]) health.setStatus(name, 'NOT_SERVING');
      logger.info({ drain_timeout_ms: options.drainTimeoutMs ?? 10_000 }, 'shutting down: draining in-flight calls');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('drain timeout: cancelling in-flight calls');
          server.forceShutdown();
          resolve();
        }, options.drainTimeoutMs ?? 10_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      healthServer?.server.forceShutdown();
      await flushTracing();
      logger.info('stopped');
    })();
    return stopping;
  };

  if (options.handleSignals) {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'signal received');
      shutdown()
        .then(() => shutdownTracing())
        .finally(() => process.exit(0));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  return { server, port, address, health, healthPort: healthServer?.port, logger, shutdown };
}
