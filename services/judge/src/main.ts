import * as path from 'node:path';
import { ArtifactStore } from '@alignment/artifacts';
import { DESCRIPTOR_SET_PATH } from '@alignment/contracts';
import { DEFAULT_PORTS, portFromEnv, startServer } from '@alignment/service-kit';
import { defaultJudgeDeps, judgeBinding } from './service';

// Serves alignment.v1.Judge in the foreground on $PORT (default 50053) until SIGTERM/SIGINT.
// Outputs without an output_uri go under $ARTIFACT_ROOT (default $DATA_DIR/artifacts, DATA_DIR default
// ./.data/judge); MODEL_CACHE_SIZE language models stay loaded between requests (default 3: policy, reference and
// a judge); LM_THREADS sets onnxruntime's threads (default: the cores this process may use,
// cgroup quota included: libs/lm cpu-cores.ts).
const dataDir = process.env.DATA_DIR || './.data/judge';
const store = new ArtifactStore(process.env.ARTIFACT_ROOT || path.join(dataDir, 'artifacts'));

startServer({
  name: 'judge',
  port: portFromEnv(DEFAULT_PORTS.judge),
  bindings: [judgeBinding(defaultJudgeDeps(store))],
  descriptorSetPath: DESCRIPTOR_SET_PATH,
  handleSignals: true,
}).catch((error) => {
  process.stderr.write(`judge failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
