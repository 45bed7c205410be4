import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CancelledError, InvalidArgumentError, PermissionDeniedError } from '@alignment/errors';
import { LanguageModel, type CausalModel, type ModelCache, type OpenAiEndpoint } from '@alignment/lm';
import { certificateIdentities, checkPlaintextBind, loadMaterial, maxTextBytes, type TlsSettings } from '@alignment/service-kit';
import { chat, complete } from './completions';
import { parseChatRequest, parseCompletionRequest } from './requests';
import { ServedModels } from './served-models';

/**
 * The generator's OpenAI-compatible HTTP endpoint (README "Chat with a trained model"): POST /v1/completions,
 * POST /v1/chat/completions and GET /v1/models for the models named in OPENAI_MODELS, run on the generator's
 * ONNX Runtime through its model cache. It binds 127.0.0.1 unless told otherwise; with TLS settings (TLS_CERT_FILE,
 * …) it serves HTTPS with the gRPC server's certificate, read at start, and asks for client certificates as
 * TLS_CLIENT_AUTH and TLS_ALLOWED_CLIENTS say; plaintext on another address is refused as for gRPC (ALLOW_PLAINTEXT=1 overrides).
 */
export interface OpenAiServerOptions {
  port: number;
  /** Default 127.0.0.1 (0.0.0.0 with TLS, as startServer). */
  host?: string;
  /** Served model name → ONNX export directory. */
  models: ReadonlyMap<string, string>;
  /**
   * Serve vLLM's POST /v1/load_lora_adapter and /v1/unload_lora_adapter (OPENAI_RUNTIME_LOADING=1): models loaded
   * at runtime under a name, from a whole ONNX export (served-models.ts). Default false: those routes answer 404.
   */
  runtimeLoading?: boolean;
  cache: ModelCache<CausalModel, OpenAiEndpoint>;
  tls?: TlsSettings;
  /** Largest request body; default 4 × MAX_TEXT_BYTES (validation.ts). */
  maxBodyBytes?: number;
  /** Where failures that are the server's own (500) are reported. */
  onError?: (error: Error) => void;
}

export interface RunningOpenAiServer {
  /** http(s)://host:port/v1, the base URL an OpenAI client takes. */
  baseUrl: string;
  port: number;
  close(): Promise<void>;
}

/** Parses OPENAI_MODELS ("name=/path/to/onnx,other=/path"); a malformed entry is an error naming the variable. */
export function openAiModelsFromEnv(value: string | undefined): Map<string, string> {
  const models = new Map<string, string>();
  for (const entry of (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    if (eq <= 0 || eq === entry.length - 1) throw new Error(`OPENAI_MODELS: '${entry}' is not name=/path/to/onnx-export`);
    models.set(entry.slice(0, eq).trim(), entry.slice(eq + 1).trim());
  }
  return models;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly param: string | null,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The body as JSON, at most `limit` bytes (413 past it: the rest is not read). */
function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return reject(new HttpError(413, 'invalid_request_error', null, `the body is ${declared} bytes; at most ${limit} are taken`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, 'invalid_request_error', null, `the body is over ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(new HttpError(400, 'invalid_request_error', 'body', `not JSON: ${(error as Error).message}`));
      }
    });
  });
}

export async function startOpenAiServer(options: OpenAiServerOptions): Promise<RunningOpenAiServer> {
  const tls = options.tls;
  const host = options.host ?? (tls?.certFile ? '0.0.0.0' : '127.0.0.1');
  if (!tls?.certFile) checkPlaintextBind(host);
  const limit = options.maxBodyBytes ?? 4 * maxTextBytes();

  const served = new ServedModels(options.models, options.runtimeLoading === true);
  const model = async <R>(name: string, run: (m: LanguageModel) => Promise<R>): Promise<R> => {
    const directory = served.directory(name);
    if (directory === undefined) throw new HttpError(404, 'invalid_request_error', 'model', `the model '${name}' does not exist: GET /v1/models lists them`, 'model_not_found');
    const lease = await options.cache.acquire(directory);
    try {
      if (!(lease.value instanceof LanguageModel)) throw new Error(`${directory} is not an ONNX model`);
      return await run(lease.value);
    } finally {
      lease.release();
    }
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new CancelledError('the client closed the connection'));
    });
    const route = `${req.method} ${(req.url ?? '').split('?')[0]}`;
    try {
      if (tls && tls.allowedClients.length > 0) {
        const identities = certificateIdentities((req.socket as TLSSocket).getPeerCertificate());
        if (!identities.some((id) => tls.allowedClients.includes(id))) throw new HttpError(403, 'permission_error', null, 'this client is not in TLS_ALLOWED_CLIENTS');
      }
      if (route === 'GET /v1/models') {
        const created = Math.floor(Date.now() / 1000);
        return send(res, 200, { object: 'list', data: served.names().map((id) => ({ id, object: 'model', created, owned_by: 'alignment-generator' })) });
      }
      if (served.runtimeLoading && route === 'POST /v1/load_lora_adapter') {
        const { name, directory } = await served.resolveLoad(await readJson(req, limit));
        // Loaded now, as vLLM does: a model that does not load fails this request, not the first completion.
        (await options.cache.acquire(directory)).release();
        served.add(name, directory);
        return sendText(res, 200, `Success: LoRA adapter '${name}' added successfully.`);
      }
      if (served.runtimeLoading && route === 'POST /v1/unload_lora_adapter') {
        const { name, removed } = served.unload(await readJson(req, limit));
        if (!removed) throw new HttpError(404, 'NotFoundError', 'lora_name', `The lora adapter '${name}' cannot be found.`);
        return sendText(res, 200, `Success: LoRA adapter '${name}' removed successfully.`);
      }
      if (route === 'POST /v1/completions') {
        const request = parseCompletionRequest(await readJson(req, limit));
        return send(res, 200, await model(request.model, (m) => complete(m, request, controller.signal)));
      }
      if (route === 'POST /v1/chat/completions') {
        const request = parseChatRequest(await readJson(req, limit));
        return send(res, 200, await model(request.model, (m) => chat(m, request, controller.signal)));
      }
      throw new HttpError(404, 'invalid_request_error', null, `no route ${route}: POST /v1/completions, POST /v1/chat/completions, GET /v1/models${served.runtimeLoading ? ', POST /v1/load_lora_adapter, POST /v1/unload_lora_adapter' : ''}`);
    } catch (error) {
      if (controller.signal.aborted) return;
      let failure: HttpError;
      if (error instanceof HttpError) failure = error;
      else if (error instanceof PermissionDeniedError) failure = new HttpError(403, 'permission_error', error.field, error.message);
      else if (error instanceof InvalidArgumentError) failure = new HttpError(400, 'invalid_request_error', error.field, error.message);
      else {
        options.onError?.(error as Error);
        failure = new HttpError(500, 'server_error', null, (error as Error).message);
      }
      if (!res.headersSent) send(res, failure.status, { error: { message: failure.message, type: failure.type, param: failure.param, code: failure.code } });
    }
  };

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => void handle(req, res);
  let server: http.Server;
  let scheme = 'http';
  if (tls?.certFile) {
    const { material, error } = loadMaterial(tls);
    if (!material) throw new Error(error);
    server = https.createServer(
      { cert: material.cert, key: material.key, ca: material.ca, requestCert: tls.clientAuth !== 'none', rejectUnauthorized: tls.clientAuth === 'require' },
      listener,
    );
    scheme = 'https';
  } else {
    server = http.createServer(listener);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    baseUrl: `${scheme}://${shown}:${port}/v1`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
