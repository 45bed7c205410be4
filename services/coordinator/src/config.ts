import * as path from 'node:path';
import { DEFAULT_PORTS, portFromEnv } from '@alignment/service-kit';
import type { RetryOptions } from './clients/grpc-executors';
import type { AutoResumePolicy } from './run/auto-resume';
import { modelStoreFromEnv } from './run/model-store';

/**
 * The coordinator's configuration, from the environment (all optional):
 *
 * | variable                 | default            | meaning                                                              |
 * |--------------------------|--------------------|----------------------------------------------------------------------|
 * | PORT                     | 50051              | gRPC port (all interfaces)                                           |
 * | DATA_DIR                 | ./.data            | runs.sqlite under coordinator/, artifacts under runs/ (shared with   |
 * |                          |                    | the generator, judge and trainer: they read and write these paths)   |
 * | GENERATOR_ADDRESS        | localhost:50052    | the generator                                                        |
 * | GENERATOR_ADDRESSES      | –                  | comma-separated generator replicas; overrides GENERATOR_ADDRESS;     |
 * |                          |                    | shard k goes to replica k mod n                                      |
 * | JUDGE_ADDRESS            | localhost:50053    | the judge                                                            |
 * | JUDGE_ADDRESSES          | –                  | comma-separated judge replicas, like GENERATOR_ADDRESSES             |
 * | TRAINER_ADDRESS          | localhost:50055    | the trainer                                                          |
 * | RPC_DEADLINE_MS          | 30000              | deadline of unary calls (StartJob, GetJob, CancelJob)                |
 * | STAGE_DEADLINE_MS        | 86400000 (24 h)    | deadline of one streaming call (a Generate / JudgePairs shard, a     |
 * |                          |                    | WatchJob)                                                            |
 * | UNAVAILABLE_ATTEMPTS     | 6                  | attempts at a service that answers UNAVAILABLE before the run FAILS  |
 * | RETRY_BACKOFF_MS         | 500                | first backoff between those attempts; doubles up to 10 s             |
 * | AUTH_TOKENS_FILE         | –                  | bearer tokens `<token> <principal> [admin]` per line (auth.ts)       |
 * | TLS_PRINCIPALS           | –                  | client certificates as principals, `identity=principal[:admin],…`    |
 * |                          |                    | (cert-auth.ts); TLS_* (service-kit tls-config.ts) set the transport  |
 * | AUTO_RESUMES             | 3                  | times a run resumes by itself after a stage was INTERRUPTED or a     |
 * |                          |                    | service stayed UNAVAILABLE (GetRun: automatic_resumes); 0 = never    |
 * | AUTO_RESUME_BACKOFF_MS   | 5000               | wait before the first of them; doubles up to 60 s                    |
 * | RESUME_TICK_MS           | 15000              | how often runs left RUNNING without an execution are resumed         |
 * | CHECKPOINT_EVERY_STEPS   | 100                | trainer checkpoint interval of LEARN jobs whose RunSpec sets none    |
 * | LEARN_EXECUTOR           | grpc               | `grpc`: LEARN calls the trainer service at TRAINER_ADDRESS;          |
 * |                          |                    | `kubernetes`: each LEARN stage is a Kubernetes Job (K8S_LEARN_*,     |
 * |                          |                    | clients/kubernetes/learn-config.ts)                                  |
 * | MODEL_STORE_URI          | –                  | `s3://bucket/prefix`: LEARN stages publish their models under        |
 * |                          |                    | <prefix>/<run>/round-<t>/learn/attempt-<k> (run/model-store.ts), not |
 * |                          |                    | in the run directory; within S3_ARTIFACT_ROOTS when those are set.   |
 * |                          |                    | With LEARN_EXECUTOR=kubernetes the Jobs publish them, with the S3    |
 * |                          |                    | settings of Secret K8S_LEARN_S3_SECRET (default object-store)        |
 */
export interface CoordinatorConfig {
  port: number;
  dataDir: string;
  generatorAddresses: string[];
  judgeAddresses: string[];
  trainerAddress: string;
  rpcDeadlineMs: number;
  stageDeadlineMs: number;
  retry: RetryOptions;
  autoResume: AutoResumePolicy;
  resumeTickMs: number;
  checkpointEverySteps: number;
  learnExecutor: LearnExecutorKind;
  /** MODEL_STORE_URI, normalised; undefined = models stay in the run directory. */
  modelStoreUri?: string;
}

export type LearnExecutorKind = 'grpc' | 'kubernetes';

export const DEFAULT_ADDRESSES = {
  generator: `localhost:${DEFAULT_PORTS.generator}`,
  judge: `localhost:${DEFAULT_PORTS.judge}`,
  trainer: `localhost:${DEFAULT_PORTS.trainer}`,
} as const;

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got '${raw}'`);
  }
  return value;
}

function addresses(env: NodeJS.ProcessEnv, list: string, single: string, fallback: string): string[] {
  const many = (env[list] ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (many.length > 0) return many;
  return [env[single]?.trim() || fallback];
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  return {
    port: portFromEnv(DEFAULT_PORTS.coordinator),
    dataDir: path.resolve(env.DATA_DIR || '.data'),
    generatorAddresses: addresses(env, 'GENERATOR_ADDRESSES', 'GENERATOR_ADDRESS', DEFAULT_ADDRESSES.generator),
    judgeAddresses: addresses(env, 'JUDGE_ADDRESSES', 'JUDGE_ADDRESS', DEFAULT_ADDRESSES.judge),
    trainerAddress: env.TRAINER_ADDRESS?.trim() || DEFAULT_ADDRESSES.trainer,
    rpcDeadlineMs: positiveInt(env, 'RPC_DEADLINE_MS', 30_000),
    stageDeadlineMs: positiveInt(env, 'STAGE_DEADLINE_MS', 24 * 3600 * 1000),
    retry: {
      attempts: positiveInt(env, 'UNAVAILABLE_ATTEMPTS', 6),
      initialBackoffMs: positiveInt(env, 'RETRY_BACKOFF_MS', 500),
      maxBackoffMs: 10_000,
    },
    autoResume: {
      budget: positiveInt(env, 'AUTO_RESUMES', 3, 0),
      backoffMs: positiveInt(env, 'AUTO_RESUME_BACKOFF_MS', 5_000),
      maxBackoffMs: 60_000,
    },
    resumeTickMs: positiveInt(env, 'RESUME_TICK_MS', 15_000),
    checkpointEverySteps: positiveInt(env, 'CHECKPOINT_EVERY_STEPS', 100),
    learnExecutor: learnExecutorKind(env.LEARN_EXECUTOR),
    modelStoreUri: modelStoreFromEnv(env),
  };
}

function learnExecutorKind(raw: string | undefined): LearnExecutorKind {
  const value = raw?.trim() || 'grpc';
  if (value !== 'grpc' && value !== 'kubernetes') throw new Error(`LEARN_EXECUTOR must be grpc or kubernetes, got '${raw}'`);
  return value;
}

/** $DATA_DIR/coordinator/runs.sqlite */
export function databasePath(dataDir: string): string {
  return path.join(dataDir, 'coordinator', 'runs.sqlite');
}
