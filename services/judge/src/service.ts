import type * as grpc from '@grpc/grpc-js';
import {
  JudgeMethod,
  JudgeService,
  Pairing,
  UnfinishedPairs,
  type JudgePairsRequest,
  type JudgePairsResponse,
  type ModelRef,
  type ScoreSequencesRequest,
  type ScoreSequencesResponse,
} from '@alignment/contracts';
import { causalModelCache, ModelCache, RewardModel, type CausalModelRef } from '@alignment/lm';
import { callAbortSignal, requireTextWithinLimit, type ServiceBinding } from '@alignment/service-kit';
import { InvalidArgumentError } from '@alignment/errors';
import { judgePairs, type JudgeDeps, type JudgeJob, type JudgeMethodName } from './judging/judge-pairs';
import type { PairingName } from './judging/pairing';
import { scoreItems } from './judging/score-sequences';
import type { UnfinishedPolicyName } from './judging/unfinished';

const METHODS: Record<number, JudgeMethodName> = {
  [JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT]: 'spa_implicit',
  [JudgeMethod.JUDGE_METHOD_REWARD_MODEL]: 'reward_model',
  [JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE]: 'llm_as_judge',
  [JudgeMethod.JUDGE_METHOD_RULE]: 'rule',
};

const PAIRINGS: Record<number, PairingName> = {
  [Pairing.PAIRING_UNSPECIFIED]: 'first_two',
  [Pairing.PAIRING_BEST_WORST]: 'best_worst',
};

const UNFINISHED_POLICIES: Record<number, UnfinishedPolicyName> = {
  [UnfinishedPairs.UNFINISHED_PAIRS_UNSPECIFIED]: 'drop',
  [UnfinishedPairs.UNFINISHED_PAIRS_DROP]: 'drop',
  [UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE]: 'penalize',
  [UnfinishedPairs.UNFINISHED_PAIRS_KEEP]: 'keep',
};

/** A ModelRef's ONNX export directory, and the OpenAI-compatible server serving it when `openai` is set. */
function onnx(ref: ModelRef | undefined): CausalModelRef | undefined {
  if (!ref?.onnx) return undefined;
  return { uri: ref.onnx.uri, sha256: ref.onnx.sha256, ...(ref.openai ? { openai: { baseUrl: ref.openai.baseUrl, model: ref.openai.model } } : {}) };
}

/** JudgePairsRequest → the domain's job (shape only; validation is the domain's and names the request fields). */
export function toJudgeJob(request: JudgePairsRequest): JudgeJob {
  const { spaImplicit, rewardModel, llmAsJudge, rule } = request;
  return {
    method: METHODS[request.method],
    responses: request.responses ? { uri: request.responses.uri, sha256: request.responses.sha256 } : undefined,
    spaImplicit: spaImplicit && {
      policy: onnx(spaImplicit.policy),
      reference: onnx(spaImplicit.reference),
      beta: spaImplicit.beta,
      tieTolerance: spaImplicit.tieTolerance,
      lengthPenalty: spaImplicit.lengthPenalty,
    },
    rewardModel: rewardModel && { model: onnx(rewardModel.rewardModel), tieTolerance: rewardModel.tieTolerance },
    llmAsJudge: llmAsJudge && { model: onnx(llmAsJudge.judgeModel), tieTolerance: llmAsJudge.tieTolerance },
    rule: rule && { rule: rule.rule, tieTolerance: rule.tieTolerance },
    shard: request.shard,
    outputUri: request.outputUri,
    pairing: PAIRINGS[request.pairing ?? Pairing.PAIRING_UNSPECIFIED] ?? unknownPairing(request.pairing!),
    ...(request.unfinishedPairs !== undefined ? { unfinishedPairs: UNFINISHED_POLICIES[request.unfinishedPairs] ?? unknownUnfinished(request.unfinishedPairs) } : {}),
    ...(request.unfinishedPenalty !== undefined ? { unfinishedPenalty: request.unfinishedPenalty } : {}),
    promptEncoding: request.promptEncoding,
  };
}

function unknownUnfinished(policy: number): never {
  throw new InvalidArgumentError('unfinished_pairs', `unknown policy ${policy}: UNFINISHED_PAIRS_DROP, _PENALIZE or _KEEP`);
}

function unknownPairing(pairing: number): never {
  throw new InvalidArgumentError('pairing', `unknown pairing ${pairing}: PAIRING_UNSPECIFIED (the first two) or PAIRING_BEST_WORST`);
}

export function defaultJudgeDeps(store: JudgeDeps['store']): JudgeDeps {
  // The SPA judge holds the policy and the reference at once; a third slot keeps an LLM judge warm beside them.
  const capacity = Number(process.env.MODEL_CACHE_SIZE) || 3;
  return {
    languageModels: causalModelCache(capacity),
    rewardModels: new ModelCache((dir) => RewardModel.load(dir), 1),
    store,
  };
}

export function judgeBinding(deps: JudgeDeps): ServiceBinding {
  const scoreSequencesHandler = async (request: ScoreSequencesRequest, call: grpc.ServerUnaryCall<ScoreSequencesRequest, ScoreSequencesResponse>): Promise<ScoreSequencesResponse> => {
    const scores = await scoreItems(
      {
        model: onnx(request.model),
        items: request.items.map((i, k) => ({
          prompt: requireTextWithinLimit(`items[${k}].prompt`, i.prompt),
          response: requireTextWithinLimit(`items[${k}].response`, i.response),
        })),
        perToken: request.perToken,
        promptEncoding: request.promptEncoding,
      },
      deps.languageModels,
      callAbortSignal(call),
    );
    return { scores: scores.map((s) => ({ logp: s.logp, numTokens: s.numTokens, tokenLogps: s.tokenLogps })) };
  };
  const judgePairsHandler = async (request: JudgePairsRequest, call: grpc.ServerWritableStream<JudgePairsRequest, JudgePairsResponse>) => {
    const outcome = await judgePairs(toJudgeJob(request), deps, {
      signal: callAbortSignal(call),
      onProgress: (p) =>
        call.write({ event: { $case: 'progress', value: { done: p.done, total: p.total, unit: 'prompts', tokensPerSecond: 0, etaSeconds: p.etaSeconds } } }),
    });
    call.write({
      event: {
        $case: 'result',
        value: {
          pairs: { uri: outcome.pairs.uri, sha256: outcome.pairs.sha256, sizeBytes: outcome.pairs.sizeBytes },
          counts: outcome.counts,
          unfinished: outcome.unfinished,
        },
      },
    });
  };
  return {
    definition: JudgeService as unknown as ServiceBinding['definition'],
    handlers: { scoreSequences: scoreSequencesHandler, judgePairs: judgePairsHandler },
  };
}
