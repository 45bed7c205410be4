import * as path from 'node:path';
import { ArtifactStore } from '@alignment/artifacts';
import { DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { DEFAULT_PORTS, portFromEnv, startServer } from '@alignment/service-kit';
import { defaultModelCache, generatorBinding } from './service';

// Serves alignment.v1.Generator in the foreground on $PORT (default 50052) until SIGTERM/SIGINT.
// Outputs without an output_uri go under $ARTIFACT_ROOT (default $DATA_DIR/artifacts, DATA_DIR default
// ./.data/generator); MODEL_CACHE_SIZE models stay loaded between requests (default 2); LM_THREADS sets
// onnxruntime's threads (default: the cores this process may use, cgroup quota included: libs/lm cpu-cores.ts); GENERATE_BATCH_ROWS the rows decoded together (default 32).
const dataDir = process.env.DATA_DIR || './.data/generator';
const store = new ArtifactStore(process.env.ARTIFACT_ROOT || path.join(dataDir, 'artifacts'));
const batchRows = Number(process.env.GENERATE_BATCH_ROWS) || undefined;

startServer({
  name: 'generator',
  port: portFromEnv(DEFAULT_PORTS.generator),
  bindings: [generatorBinding({ models: defaultModelCache(), store, batchRows })],
  descriptorSetPath: DESCRIPTOR_SET_PATH,
  handleSignals: true,
}).catch((error) => {
  process.stderr.write(`generator failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
