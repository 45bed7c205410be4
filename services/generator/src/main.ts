import * as path from 'node:path';
import { ArtifactStore } from '@alignment/artifacts';
import { DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { readModelDirectory } from '@alignment/lm';
import { DEFAULT_PORTS, portFromEnv, startServer, tlsFromEnv } from '@alignment/service-kit';
import { openAiModelsFromEnv, startOpenAiServer } from './openai-http/http-server';
import { defaultModelCache, generatorBinding } from './service';
// Serves alignment.v1.Generator in the foreground on $PORT (default 50052) until SIGTERM/SIGINT.
// Outputs without an output_uri go under $ARTIFACT_ROOT (default $DATA_DIR/artifacts, DATA_DIR default
// ./.data/generator); MODEL_CACHE_SIZE models stay loaded between requests (default 2); LM_THREADS sets
// onnxruntime's threads (default: the cores this process may use, cgroup quota included: libs/lm cpu-cores.ts); GENERATE_BATCH_ROWS the rows decoded together (default 32).
// OPENAI_HTTP_PORT (unset = off) also serves the OpenAI-compatible /v1 endpoint (openai-http/http-server.ts) for the
// models of OPENAI_MODELS (name=/path/to/onnx-export,…) on OPENAI_HTTP_HOST (default $HOST, else 127.0.0.1; HTTPS
// with the TLS_* settings); OPENAI_RUNTIME_LOADING=1 adds vLLM's POST /v1/load_lora_adapter and
// /v1/unload_lora_adapter, taking a whole ONNX export as lora_path (openai-http/served-models.ts).
const dataDir = process.env.DATA_DIR || './.data/generator';
const store = new ArtifactStore(process.env.ARTIFACT_ROOT || path.join(dataDir, 'artifacts'));
const batchRows = Number(process.env.GENERATE_BATCH_ROWS) || undefined;
const models = defaultModelCache();

async function main(): Promise<void> {
  const server = await startServer({
    name: 'generator',
    port: portFromEnv(DEFAULT_PORTS.generator),
    bindings: [generatorBinding({ models, store, batchRows })],
    descriptorSetPath: DESCRIPTOR_SET_PATH,
    handleSignals: true,
  });
  const httpPort = process.env.OPENAI_HTTP_PORT?.trim();
  if (!httpPort) return;
  if (!/^[0-9]{1,5}$/.test(httpPort) || Number(httpPort) > 65535) throw new Error(`OPENAI_HTTP_PORT must be a port number, got '${httpPort}'`);
  const served = openAiModelsFromEnv(process.env.OPENAI_MODELS);
  if (served.size === 0) throw new Error('OPENAI_HTTP_PORT is set but OPENAI_MODELS names no model (name=/path/to/onnx-export,…)');
  // A wrong directory fails the start (naming it), not every request.
  for (const directory of served.values()) readModelDirectory(directory);
  const http = await startOpenAiServer({
    port: Number(httpPort),
    host: process.env.OPENAI_HTTP_HOST || process.env.HOST || undefined,
    models: served,
    runtimeLoading: process.env.OPENAI_RUNTIME_LOADING === '1',
    cache: models,
    tls: tlsFromEnv(),
    onError: (error) => process.stderr.write(`generator /v1: ${error.stack ?? error.message}\n`),
  });
  server.logger.info({ base_url: http.baseUrl, models: [...served.keys()] }, 'serving openai http');
}

main().catch((error) => {
  process.stderr.write(`generator failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
