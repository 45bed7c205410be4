import type { Logger } from '@alignment/service-kit';
import type { RetryOptions } from '../grpc-executors';
import { KubernetesApi, connectionFromEnv } from './api-client';
import { kubernetesLearnConfigFromEnv } from './learn-config';
import { KubernetesLearnExecutor } from './learn-executor';

export * from './api-client';
export * from './job-manifest';
export * from './learn-config';
export * from './learn-executor';

/** LEARN_EXECUTOR=kubernetes: the executor, configured from the environment (learn-config.ts, api-client.ts). */
export function kubernetesLearnExecutorFromEnv(
  env: NodeJS.ProcessEnv,
  options: { dataDir: string; rpcDeadlineMs: number; stageDeadlineMs: number; retry: RetryOptions; checkpointEverySteps?: number; logger: Logger },
): KubernetesLearnExecutor {
  const config = kubernetesLearnConfigFromEnv(env, options.dataDir);
  return new KubernetesLearnExecutor({
    api: new KubernetesApi(connectionFromEnv(env, options.rpcDeadlineMs)),
    template: config.template,
    pollMs: config.pollMs,
    stuckGraceMs: config.stuckGraceMs,
    stageDeadlineMs: options.stageDeadlineMs,
    retry: options.retry,
    checkpointEverySteps: options.checkpointEverySteps,
    logger: options.logger,
  });
}
