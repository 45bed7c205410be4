import * as path from 'node:path';
import { JudgeMethod, Stage, type ArtifactRef, type JudgePairsRequest, type ModelRef } from '@alignment/contracts';
import { configurationPlan, roundJudgeMethod } from '../configurations';
import { readObjects } from '../data';
import { readPinned } from '../evaluate';
import { StageFailedError } from '../executors';
import { mean } from '../metrics';
import { judgeSharded } from '../shards';
import { fileOutput, learnedModel, type StageDefinition, type StageInput } from './stage';

type JudgeInputs = {
  /** This round's GENERATE output. */
  responses: StageInput<ArtifactRef | undefined>;
  /** π_{t−1}: the SPA judge's policy. */
  policy: StageInput<ModelRef | undefined>;
};

/** JUDGE (round t ≥ 1): the configuration's judge labels the first two responses of each prompt as a pair. */
export const judgeStage: StageDefinition<JudgeInputs> = {
  stage: Stage.STAGE_JUDGE,

  inputs(_spec, round, outputs) {
    return { responses: outputs.input(round, Stage.STAGE_GENERATE, 'responses'), policy: outputs.model(round - 1) };
  },

  async execute(inputs, { spec, round, dir, executors, call }) {
    const responses = inputs.responses.value!;
    const items = (await readObjects(await readPinned(responses, `round ${round}'s responses`))).map((l) => l.value);
    const method = roundJudgeMethod(spec.configuration, spec.judgeMethod);
    const request: Omit<JudgePairsRequest, 'shard' | 'outputUri'> = { method, responses };
    if (method === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT) {
      // SPA Eq. 7-8: s(y) = logp_{t-1}(y) - logp_init(y).
      request.spaImplicit = { policy: learnedModel(inputs.policy, round - 1), reference: spec.baseModel, beta: spec.loss?.beta, tieTolerance: 0, lengthPenalty: 0 };
    } else if (method === JudgeMethod.JUDGE_METHOD_REWARD_MODEL) {
      request.rewardModel = { rewardModel: spec.judgeModel, tieTolerance: 0 };
    } else if (method === JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE) {
      request.llmAsJudge = { judgeModel: spec.judgeModel, tieTolerance: 0 };
    } else {
      throw new StageFailedError(`${configurationPlan(spec.configuration).name} has no judge for its rounds`);
    }
    const judged = await judgeSharded(
      {
        executor: executors.judge,
        request,
        items,
        shards: spec.sharding?.judgeShards ?? 0,
        workDir: path.join(dir, 'work'),
        name: 'pairs',
        destination: path.join(dir, 'pairs.jsonl'),
      },
      call,
    );
    const c = judged.counts;
    if (c.numPairs === 0) {
      throw new StageFailedError(
        `the judge kept no pair out of ${items.length} (identical ${c.droppedIdentical}, ties ${c.droppedTies}, invalid ${c.droppedInvalid}); nothing to learn from`,
      );
    }
    const length = (s: unknown) => String(s).length;
    return {
      outputs: { pairs: fileOutput(judged.pairs) },
      metrics: {
        'judge/num_prompts': c.numPrompts,
        'judge/num_pairs': c.numPairs,
        'judge/dropped_identical': c.droppedIdentical,
        'judge/dropped_ties': c.droppedTies,
        'judge/dropped_invalid': c.droppedInvalid,
        // The judge's leaning towards length (BENCHMARK.md: print the judge's systematic leanings).
        'judge/chosen_longer_rate': mean(judged.lines.map((p) => (length(p.chosen) > length(p.rejected) ? 1 : 0))),
        'judge/mean_margin': mean(judged.lines.map((p) => Number(p.margin)).filter(Number.isFinite)),
      },
    };
  },
};
