import * as fs from 'node:fs';
import { toLocalPath } from '@alignment/artifacts';
import type { Run, Stage } from '@alignment/contracts';
import type { Logger } from '@alignment/service-kit';
import { grpcExecutors, type GrpcExecutorOptions } from '../src/clients/grpc-executors';

/**
 * The coordinator's real gRPC round-judge factory (judge_address, round_gold_labels.annotator_address) for engine
 * tests whose other executors are in memory: every other address is a closed port. `close()` closes them all.
 */
export function roundJudgeClients(logger: Logger) {
  const opened: Array<{ close(): void }> = [];
  return {
    roundJudge(retry: GrpcExecutorOptions['retry'] = { attempts: 2, initialBackoffMs: 10, maxBackoffMs: 20 }) {
      const executors = grpcExecutors({
        generatorAddresses: ['127.0.0.1:1'],
        judgeAddresses: ['127.0.0.1:1'],
        trainerAddress: '127.0.0.1:1',
        rpcDeadlineMs: 5_000,
        stageDeadlineMs: 30_000,
        retry,
        logger,
      });
      opened.push(executors);
      return executors.roundJudge;
    },
    close() {
      for (const c of opened) c.close();
    },
  };
}

export type Line = Record<string, unknown>;

/** The JSONL lines of a file output (by its file name) of one stage of a finished run. */
export function stageOutputLines(run: Run, round: number, stage: Stage, name: string): Line[] {
  const ref = run.stages.find((s) => s.round === round && s.stage === stage)!.outputs.find((o) => toLocalPath(o.uri).endsWith(`/${name}`))!;
  const text = fs.readFileSync(toLocalPath(ref.uri), 'utf8').trim();
  return text ? text.split('\n').map((l) => JSON.parse(l)) : [];
}

/** The metrics a run reported for one round. */
export const roundMetrics = (run: Run, round: number) => run.rounds.find((r) => r.round === round)!.metrics;
