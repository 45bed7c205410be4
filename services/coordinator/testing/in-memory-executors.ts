// TEST DOUBLES: in-process stage executors for the domain tests (no network). They compute what
// fake-service-outputs.ts computes, record every call, and can be delayed, gated or made to fail per call.
import {
  JobState,
  type GenerateRequest,
  type GenerateResult,
  type Job,
  type JobSpec,
  type JudgePairsRequest,
  type JudgePairsResult,
} from '@alignment/contracts';
import {
  StageAbortedError,
  abortReason,
  type CallContext,
  type Executors,
  type GenerateExecutor,
  type JudgeExecutor,
  type LearnExecutor,
} from '../src/run/executors';
import { fakeGenerate, fakeJudgePairs, fakeTrainOutputs } from './fake-service-outputs';

/** Waits for `promise` unless the signal aborts first. */
function orAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new StageAbortedError(abortReason(signal)));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

type Hook<Req> = (request: Req, call: number) => Promise<void> | void;

export class FakeGenerateExecutor implements GenerateExecutor {
  readonly calls: GenerateRequest[] = [];
  /** Runs before the work of each call (delay, gate, throw). */
  before?: Hook<GenerateRequest>;

  async generate(request: GenerateRequest, ctx: CallContext): Promise<GenerateResult> {
    this.calls.push(request);
    await orAbort(Promise.resolve(this.before?.(request, this.calls.length)), ctx.signal);
    return fakeGenerate(request, {
      beforePrompt: async (done, total) => {
        if (ctx.signal.aborted) throw new StageAbortedError(abortReason(ctx.signal));
        ctx.onProgress({ done, total, unit: 'prompts', tokensPerSecond: 0, etaSeconds: 0 });
      },
    });
  }
}

export class FakeJudgeExecutor implements JudgeExecutor {
  readonly calls: JudgePairsRequest[] = [];
  before?: Hook<JudgePairsRequest>;

  async judgePairs(request: JudgePairsRequest, ctx: CallContext): Promise<JudgePairsResult> {
    this.calls.push(request);
    await orAbort(Promise.resolve(this.before?.(request, this.calls.length)), ctx.signal);
    return fakeJudgePairs(request, {
      beforeItem: async () => {
        if (ctx.signal.aborted) throw new StageAbortedError(abortReason(ctx.signal));
      },
    });
  }
}

export class FakeLearnExecutor implements LearnExecutor {
  readonly calls: Array<{ jobId: string; spec: JobSpec }> = [];
  /** Job ids whose job was aborted because the run was cancelled (what the trainer's CancelJob would get). */
  readonly cancelled: string[] = [];
  before?: (jobId: string, spec: JobSpec, call: number) => Promise<void> | void;

  async train(jobId: string, spec: JobSpec, ctx: CallContext): Promise<Job> {
    this.calls.push({ jobId, spec });
    try {
      await orAbort(Promise.resolve(this.before?.(jobId, spec, this.calls.length)), ctx.signal);
    } catch (error) {
      if (error instanceof StageAbortedError && error.reason === 'cancelled') this.cancelled.push(jobId);
      throw error;
    }
    const { outputs, metrics } = await fakeTrainOutputs(spec);
    return {
      jobId,
      spec,
      state: JobState.JOB_STATE_SUCCEEDED,
      metrics,
      outputs,
      error: '',
      resumeCount: 0,
      lastCheckpointStep: 0,
    };
  }
}

export interface FakeExecutors extends Executors {
  generate: FakeGenerateExecutor;
  judge: FakeJudgeExecutor;
  learn: FakeLearnExecutor;
  /** The judge every evaluation.gold_judge_address gets; `goldAddresses` records the address of each lookup. */
  gold: FakeJudgeExecutor;
  goldAddresses: string[];
  goldJudge: (address: string) => JudgeExecutor;
}

export function fakeExecutors(): FakeExecutors {
  const gold = new FakeJudgeExecutor();
  const goldAddresses: string[] = [];
  const goldJudge = (address: string) => {
    goldAddresses.push(address);
    return gold;
  };
  return { generate: new FakeGenerateExecutor(), judge: new FakeJudgeExecutor(), learn: new FakeLearnExecutor(), gold, goldAddresses, goldJudge };
}
