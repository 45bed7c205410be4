import type { LearnJobTemplate, Toleration } from './job-manifest';

/**
 * LEARN_EXECUTOR=kubernetes: the shape of the LEARN Jobs, from the coordinator's environment.
 *
 * | variable                          | default                  | meaning                                          |
 * |-----------------------------------|--------------------------|--------------------------------------------------|
 * | K8S_LEARN_IMAGE                   | – (required)             | the trainer image                                |
 * | K8S_LEARN_NODES                   | 1                        | pods (nodes) per Job                             |
 * | K8S_LEARN_GPUS_PER_NODE           | 1                        | nvidia.com/gpu per pod (0: CPU)                  |
 * | K8S_LEARN_NODE_SELECTOR           | –                        | `key=value,…`                                    |
 * | K8S_LEARN_TOLERATIONS             | –                        | JSON array of tolerations                        |
 * | K8S_LEARN_DATA_CLAIM              | alignment-data           | the shared data volume's PVC, at DATA_DIR        |
 * | K8S_LEARN_SERVICE_ACCOUNT         | trainer                  | the pods' ServiceAccount                         |
 * | K8S_LEARN_ACCELERATE_CONFIG       | –                        | accelerate config in the image                   |
 * | K8S_LEARN_CPU / K8S_LEARN_MEMORY  | 4:8 / 32Gi:64Gi          | `request:limit` per pod                          |
 * | K8S_LEARN_SHM                     | 8Gi                      | /dev/shm size                                    |
 * | K8S_LEARN_TTL_S                   | 3600                     | ttlSecondsAfterFinished                          |
 * | K8S_LEARN_BACKOFF_LIMIT           | 2                        | pod kills/crashes before the Job fails           |
 * | K8S_LEARN_RENDEZVOUS_PORT         | 29500                    | torch rendezvous port on pod 0                   |
 * | K8S_LEARN_TLS_SECRET              | –                        | Secret for the pods' TLS_*_FILE                  |
 * | K8S_LEARN_S3_SECRET               | object-store when        | Secret whose keys are the pods' S3 settings      |
 * |                                   | MODEL_STORE_URI is set   | (envFrom: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_  |
 * |                                   |                          | KEY, S3_ENDPOINT_URL, AWS_REGION…)               |
 * | K8S_LEARN_PASS_ENV                | DRO_SOLVER_ADDRESS,…     | coordinator variables copied into the pods       |
 * | K8S_LEARN_ENV_<NAME>              | –                        | <NAME> in the pods (e.g. K8S_LEARN_ENV_ARTIFACT_ |
 * |                                   |                          | ROOTS: the trainer's confined paths)             |
 * | K8S_LEARN_POLL_MS                 | 5000                     | how often the Job's status is read               |
 * | K8S_LEARN_STUCK_GRACE_S           | 300                      | a pod that cannot start (image pull, config)     |
 * |                                   |                          | this long fails the stage; its Job is deleted    |
 * | K8S_API_URL / K8S_API_TOKEN       | in-cluster               | API server override (api-client.ts)              |
 * | K8S_NAMESPACE                     | the pod's namespace      | where the Jobs go                                |
 */
export interface KubernetesLearnConfig {
  template: LearnJobTemplate;
  pollMs: number;
  stuckGraceMs: number;
}

const DEFAULT_PASS_ENV = [
  'DRO_SOLVER_ADDRESS',
  'HF_HUB_OFFLINE',
  'LOG_LEVEL',
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  // The buckets and prefixes the trainer may write and read (not secret; the credentials come from K8S_LEARN_S3_SECRET).
  'S3_ARTIFACT_ROOTS',
  'S3_READ_ONLY_ROOTS',
];
/** The Secret the LEARN Jobs take their S3 settings from when MODEL_STORE_URI is set and K8S_LEARN_S3_SECRET is not. */
export const DEFAULT_OBJECT_STORE_SECRET = 'object-store';
/** A Secret's name: a DNS-1123 subdomain. */
const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** K8S_LEARN_ENV_<NAME>=value: <NAME>=value in the Jobs' pods. */
const ENV_PREFIX = 'K8S_LEARN_ENV_';
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) throw new Error(`${name} must be an integer >= ${min}, got '${raw}'`);
  return Number(raw);
}

function range(env: NodeJS.ProcessEnv, name: string, fallback: [string, string]): [string, string] {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const [request, limit = request] = raw.split(':');
  if (!QUANTITY.test(request) || !QUANTITY.test(limit)) throw new Error(`${name} must be <request>[:<limit>] quantities (e.g. 4:8, 32Gi:64Gi), got '${raw}'`);
  return [request, limit];
}

function nodeSelector(raw: string | undefined): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const pair of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`K8S_LEARN_NODE_SELECTOR must be key=value,…, got '${pair}'`);
    selector[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return selector;
}

function tolerations(raw: string | undefined): Toleration[] {
  if (!raw?.trim()) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`K8S_LEARN_TOLERATIONS must be a JSON array of tolerations: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.some((t) => typeof t !== 'object' || t === null || Array.isArray(t))) {
    throw new Error('K8S_LEARN_TOLERATIONS must be a JSON array of objects ({"key", "operator", "value", "effect"})');
  }
  return parsed as Toleration[];
}

function objectStoreSecret(env: NodeJS.ProcessEnv): string | undefined {
  const name = env.K8S_LEARN_S3_SECRET?.trim() || (env.MODEL_STORE_URI?.trim() ? DEFAULT_OBJECT_STORE_SECRET : undefined);
  if (name !== undefined && (name.length > 253 || !SECRET_NAME.test(name))) {
    throw new Error(`K8S_LEARN_S3_SECRET must be a Secret name (lower-case letters, digits, '-' and '.'), got '${name}'`);
  }
  return name;
}

/** Throws an error naming the variable for a missing or malformed setting. */
export function kubernetesLearnConfigFromEnv(env: NodeJS.ProcessEnv, dataDir: string): KubernetesLearnConfig {
  const image = env.K8S_LEARN_IMAGE?.trim();
  if (!image) throw new Error('LEARN_EXECUTOR=kubernetes needs K8S_LEARN_IMAGE (the trainer image)');
  const [cpuRequest, cpuLimit] = range(env, 'K8S_LEARN_CPU', ['4', '8']);
  const [memoryRequest, memoryLimit] = range(env, 'K8S_LEARN_MEMORY', ['32Gi', '64Gi']);
  const shm = env.K8S_LEARN_SHM?.trim() || '8Gi';
  if (!QUANTITY.test(shm)) throw new Error(`K8S_LEARN_SHM must be a quantity (e.g. 8Gi), got '${shm}'`);
  const pass = env.K8S_LEARN_PASS_ENV !== undefined ? env.K8S_LEARN_PASS_ENV.split(',').map((n) => n.trim()).filter(Boolean) : DEFAULT_PASS_ENV;
  const passed: Record<string, string> = {};
  for (const name of pass) if (env[name] !== undefined) passed[name] = env[name]!;
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(ENV_PREFIX) || value === undefined) continue;
    const name = key.slice(ENV_PREFIX.length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`${key}: '${name}' is not an environment variable name`);
    passed[name] = value;
  }
  return {
    template: {
      image,
      nodes: int(env, 'K8S_LEARN_NODES', 1, 1),
      gpusPerNode: int(env, 'K8S_LEARN_GPUS_PER_NODE', 1, 0),
      nodeSelector: nodeSelector(env.K8S_LEARN_NODE_SELECTOR),
      tolerations: tolerations(env.K8S_LEARN_TOLERATIONS),
      dataClaim: env.K8S_LEARN_DATA_CLAIM?.trim() || 'alignment-data',
      dataMountPath: dataDir,
      serviceAccount: env.K8S_LEARN_SERVICE_ACCOUNT?.trim() || 'trainer',
      accelerateConfig: env.K8S_LEARN_ACCELERATE_CONFIG?.trim() || undefined,
      resources: { cpuRequest, cpuLimit, memoryRequest, memoryLimit },
      shmSize: shm,
      ttlSecondsAfterFinished: int(env, 'K8S_LEARN_TTL_S', 3600, 0),
      backoffLimit: int(env, 'K8S_LEARN_BACKOFF_LIMIT', 2, 0),
      rendezvousPort: int(env, 'K8S_LEARN_RENDEZVOUS_PORT', 29500, 1),
      env: passed,
      tlsSecret: env.K8S_LEARN_TLS_SECRET?.trim() || undefined,
      objectStoreSecret: objectStoreSecret(env),
    },
    pollMs: int(env, 'K8S_LEARN_POLL_MS', 5000, 1),
    stuckGraceMs: int(env, 'K8S_LEARN_STUCK_GRACE_S', 300, 0) * 1000,
  };
}
