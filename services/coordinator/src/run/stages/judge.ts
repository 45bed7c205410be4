import * as path from 'node:path';
import { JudgeMethod, Pairing, PromptEncoding, RoundGoldLabels, Stage, UnfinishedPairs, type ArtifactRef, type JudgePairsRequest, type ModelRef } from '@alignment/contracts';
import { configurationPlan, roundJudgeMethod } from '../configurations';
import { readObjects, writeJsonl, type JsonObject } from '../data';
import { promptEncodingInput } from '../prompt-encoding';
import { readPinned } from '../evaluate';
import { StageFailedError } from '../executors';
import { mean } from '../metrics';
import { flipRoundLabels } from '../label-noise';
import { goldPromptIndices, keepsSelfLabels, mergeGoldLabels, selfGoldAgreement } from '../round-gold-labels';
import { deriveSeed } from '../seeds';
import { confidenceKeepFraction, keepMostConfident, marginScale } from '../self-label-levers';
import { judgeSharded } from '../shards';
import { DEFAULT_UNFINISHED_PENALTY, unfinishedPairsPolicy } from '../spec/unfinished-pairs';
import { referenceModel, servedPolicy } from './engine-models';
import { fileOutput, learnedModel, settingInput, type StageContext, type StageDefinition, type StageInput, type StageResult } from './stage';

type JudgeInputs = {
  /** This round's GENERATE output. */
  responses: StageInput<ArtifactRef | undefined>;
  /** The SPA judge's policy: π_{t−1}, or π_0 with spec.frozen_judge (π_J with spec.judge_learning_rate); absent with spec.judge_address. */
  policy?: StageInput<ModelRef | undefined>;
  /** spec.judge_address and spec.judge_rule, when the rounds are labelled by the user's judge. */
  judgeAddress?: StageInput<string>;
  judgeRule?: StageInput<string>;
  /** spec.judge_tie_margin, when > 0. */
  tieMargin?: StageInput<number>;
  /** spec.confidence_keep_fraction, when < 1. */
  confidenceKeepFraction?: StageInput<number>;
  /** spec.pairing, when best-vs-worst. */
  pairing?: StageInput<Pairing>;
  /** spec.unfinished_pairs, when not the default UNFINISHED_PAIRS_DROP. */
  unfinishedPairs?: StageInput<UnfinishedPairs>;
  /** spec.unfinished_penalty (default 1), with UNFINISHED_PAIRS_PENALIZE. */
  unfinishedPenalty?: StageInput<number>;
  /** spec.prompt_encoding, when not raw text. */
  promptEncoding?: StageInput<PromptEncoding>;
  /** spec.round_label_noise_rate, when > 0. */
  labelNoiseRate?: StageInput<number>;
  /** spec.round_gold_labels, when set. */
  goldLabels?: StageInput<RoundGoldLabels>;
};

/** The round whose model judges round `round` (docs/algorithm.md §7: frozen judge). */
const judgeRound = (frozen: boolean | undefined, round: number) => (frozen ? 0 : round - 1);

/** The judge at spec.judge_address; a coordinator built without the factory (a test's) cannot call one. */
function roundJudgeAt(executors: StageContext['executors'], address: string) {
  if (!executors.roundJudge) throw new StageFailedError(`judge_address ${address}: this coordinator cannot call a judge of its own address`);
  return executors.roundJudge(address);
}

/**
 * JUDGE (round t ≥ 1): the configuration's judge, or the user's at spec.judge_address (JUDGE_METHOD_RULE requests
 * naming spec.judge_rule; its scores in its own units, marginScale 1), labels one pair of responses per prompt (the
 * first two, or the best and worst with spec.pairing), applying spec.unfinished_pairs to pairs with a response cut at max_new_tokens (drop
 * them by default), then the confidence filter keeps the most confident pairs when the spec asks.
 */
export const judgeStage: StageDefinition<JudgeInputs> = {
  stage: Stage.STAGE_JUDGE,

  inputs(spec, round, outputs) {
    const inputs: JudgeInputs = { responses: outputs.input(round, Stage.STAGE_GENERATE, 'responses') };
    if (spec.judgeAddress) {
      inputs.judgeAddress = settingInput(spec.judgeAddress);
      inputs.judgeRule = settingInput(spec.judgeRule);
    } else {
      // With spec.judge_learning_rate the frozen judge is π_J, trained beside π_0 in round 0's LEARN.
      inputs.policy = outputs.model(judgeRound(spec.frozenJudge, round), spec.judgeLearningRate !== undefined ? 'judge_model' : 'model');
    }
    if (spec.judgeTieMargin) inputs.tieMargin = settingInput(spec.judgeTieMargin);
    if (spec.roundLabelNoiseRate) inputs.labelNoiseRate = settingInput(spec.roundLabelNoiseRate);
    if (spec.roundGoldLabels) inputs.goldLabels = { value: spec.roundGoldLabels, identity: JSON.stringify(RoundGoldLabels.toJSON(spec.roundGoldLabels)) };
    if (confidenceKeepFraction(spec) < 1) inputs.confidenceKeepFraction = settingInput(confidenceKeepFraction(spec));
    if (spec.pairing === Pairing.PAIRING_BEST_WORST) inputs.pairing = settingInput(spec.pairing);
    const unfinished = unfinishedPairsPolicy(spec);
    if (unfinished !== UnfinishedPairs.UNFINISHED_PAIRS_DROP) inputs.unfinishedPairs = settingInput(unfinished);
    if (unfinished === UnfinishedPairs.UNFINISHED_PAIRS_PENALIZE) inputs.unfinishedPenalty = settingInput(spec.unfinishedPenalty ?? DEFAULT_UNFINISHED_PENALTY);
    return { ...inputs, ...promptEncodingInput(spec) };
  },

  async execute(inputs, ctx) {
    const { spec, round, dir, executors, call } = ctx;
    const responses = inputs.responses.value!;
    const items = (await readObjects(await readPinned(responses, `round ${round}'s responses`))).map((l) => l.value);
    const external = inputs.judgeAddress?.value;
    const method = external ? JudgeMethod.JUDGE_METHOD_RULE : roundJudgeMethod(spec.configuration, spec.judgeMethod);
    // In the units of marginScale: β·(s1 − s2) for the SPA judge (coordinator.proto RunSpec.judge_tie_margin).
    const tieTolerance = inputs.tieMargin?.value ?? 0;
    const request: Omit<JudgePairsRequest, 'shard' | 'outputUri'> = {
      method,
      responses,
      // The SPA judge scores prompts as GENERATE sampled them and LEARN trains on them.
      promptEncoding: inputs.promptEncoding?.value ?? PromptEncoding.PROMPT_ENCODING_RAW_TEXT,
    };
    if (inputs.pairing) request.pairing = inputs.pairing.value;
    // Unset, the judge drops pairs with a response cut at max_new_tokens (judge.proto JudgePairsRequest.unfinished_pairs).
    if (inputs.unfinishedPairs) request.unfinishedPairs = inputs.unfinishedPairs.value;
    if (inputs.unfinishedPenalty) request.unfinishedPenalty = inputs.unfinishedPenalty.value;
    if (external) {
      // The user's judge (RunSpec.judge_address): its own scores, in its own units, under the rule it answers to.
      request.rule = { rule: inputs.judgeRule!.value, tieTolerance };
    } else if (method === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT) {
      // SPA Eq. 7-8: s(y) = logp_{t-1}(y) - logp_init(y).
      // With spec.engine, both log-probs come from the engine (engine-models.ts).
      const judgedBy = judgeRound(spec.frozenJudge, round);
      const policy = await servedPolicy(ctx, judgedBy, learnedModel(inputs.policy!, judgedBy));
      request.spaImplicit = { policy, reference: referenceModel(spec), beta: spec.loss?.beta, tieTolerance, lengthPenalty: 0 };
    } else if (method === JudgeMethod.JUDGE_METHOD_REWARD_MODEL) {
      request.rewardModel = { rewardModel: spec.judgeModel, tieTolerance };
    } else if (method === JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE) {
      request.llmAsJudge = { judgeModel: spec.judgeModel, tieTolerance };
    } else {
      throw new StageFailedError(`${configurationPlan(spec.configuration).name} has no judge for its rounds`);
    }
    // With the confidence filter or label noise, pairs.jsonl holds the pairs LEARN trains on and judged_pairs.jsonl
    // every pair as the judge labelled it.
    const rewritten = inputs.confidenceKeepFraction !== undefined || inputs.labelNoiseRate !== undefined || inputs.goldLabels !== undefined;
    const judged = await judgeSharded(
      {
        executor: external ? roundJudgeAt(executors, external) : executors.judge,
        request,
        items,
        shards: spec.sharding?.judgeShards ?? 0,
        workDir: path.join(dir, 'work'),
        name: 'pairs',
        destination: path.join(dir, rewritten ? 'judged_pairs.jsonl' : 'pairs.jsonl'),
      },
      call,
    );
    const c = judged.counts;
    if (c.numPairs === 0 && !inputs.goldLabels) {
      throw new StageFailedError(
        `the judge kept no pair out of ${items.length} (identical ${c.droppedIdentical}, ties ${c.droppedTies}, invalid ${c.droppedInvalid}, ` +
          `unfinished ${judged.unfinished.dropped}); nothing to learn from`,
      );
    }
    const length = (s: unknown) => String(s).length;
    const scale = marginScale(method, spec);
    const result: StageResult = {
      outputs: { pairs: fileOutput(judged.pairs) },
      metrics: {
        'judge/num_prompts': c.numPrompts,
        'judge/num_pairs': c.numPairs,
        'judge/dropped_identical': c.droppedIdentical,
        'judge/dropped_ties': c.droppedTies,
        'judge/dropped_invalid': c.droppedInvalid,
        // Pairs with a response cut at max_new_tokens: dropped (UNFINISHED_PAIRS_DROP), or kept (PENALIZE, KEEP).
        'judge/dropped_unfinished': judged.unfinished.dropped,
        'judge/unfinished_in_pairs': judged.unfinished.inPairs,
      },
    };
    if (judged.lines.length > 0) {
      // The judge's leaning towards length (docs/benchmark.md: print the judge's systematic leanings).
      result.metrics['judge/chosen_longer_rate'] = mean(judged.lines.map((p) => (length(p.chosen) > length(p.rejected) ? 1 : 0)));
      // In implicit-reward units β·(s1 − s2) for the SPA judge (the pairs' margin is the raw s1 − s2), the units
      // judge_tie_margin is compared in (self-label-levers.ts marginScale).
      result.metrics['judge/mean_margin'] = scale * mean(judged.lines.map((p) => Number(p.margin)).filter(Number.isFinite));
    }
    if (!rewritten) return result;
    let lines = judged.lines;
    if (inputs.confidenceKeepFraction) {
      const { kept, dropped } = keepMostConfident(lines, inputs.confidenceKeepFraction.value);
      lines = kept;
      result.metrics['judge/filtered_low_confidence'] = dropped;
    }
    if (inputs.labelNoiseRate) {
      // Deterministic from the run seed and the round: a re-executed stage flips the same pairs.
      const noisy = flipRoundLabels(lines, inputs.labelNoiseRate.value, deriveSeed(spec.seed, round, 'round-label-noise'));
      lines = noisy.pairs;
      result.metrics['judge/flipped_labels'] = noisy.flipped.length;
    }
    let goldPairs: ArtifactRef | undefined;
    if (inputs.goldLabels) {
      const gold = await withGoldLabels(ctx, inputs.goldLabels.value, request, items, judged.lines, lines, result.metrics);
      lines = gold.lines;
      goldPairs = gold.goldPairs;
    }
    if (lines.length === 0) throw new StageFailedError(`no labelled pair is left to learn from (judged ${c.numPairs})`);
    const info = await writeJsonl(path.join(dir, 'pairs.jsonl'), lines);
    result.outputs = { pairs: fileOutput({ uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes }), judged_pairs: fileOutput(judged.pairs) };
    if (goldPairs) result.outputs.gold_pairs = fileOutput(goldPairs);
    return result;
  },
};

/**
 * spec.round_gold_labels: the annotator labels pairs_per_round of the round's prompts (RULE requests naming its
 * rule, in its own units, with the round's pairing and unfinished-pair policy), its labels replace the round judge's
 * there, and the judge's agreement with it decides, when the spec asks, whether the self-labels are kept at all.
 */
async function withGoldLabels(
  ctx: StageContext,
  gold: RoundGoldLabels,
  selfRequest: Omit<JudgePairsRequest, 'shard' | 'outputUri'>,
  items: JsonObject[],
  judgedLines: JsonObject[],
  trainLines: JsonObject[],
  metrics: Record<string, number>,
): Promise<{ lines: JsonObject[]; goldPairs: ArtifactRef }> {
  const { spec, round, dir, executors, call } = ctx;
  const asked = goldPromptIndices(items.length, gold.pairsPerRound, deriveSeed(spec.seed, round, 'round-gold-labels'));
  const responses = await writeJsonl(path.join(dir, 'work', 'gold_responses.jsonl'), asked.map((i) => items[i]));
  const { spaImplicit: _s, rewardModel: _r, llmAsJudge: _l, ...common } = selfRequest;
  const labelled = await judgeSharded(
    {
      executor: roundJudgeAt(executors, gold.annotatorAddress),
      request: { ...common, method: JudgeMethod.JUDGE_METHOD_RULE, responses: { uri: responses.uri, sha256: responses.sha256, sizeBytes: responses.sizeBytes }, rule: { rule: gold.rule, tieTolerance: 0 } },
      items: asked.map((i) => items[i]),
      shards: 0,
      workDir: path.join(dir, 'work'),
      name: 'gold_pairs',
      destination: path.join(dir, 'work', 'gold_pairs_of_asked.jsonl'),
    },
    call,
  );
  // Back to the round's prompt indices.
  const goldLines = labelled.lines.map((p) => ({ ...p, prompt_index: asked[p.prompt_index as number] }));
  const written = await writeJsonl(path.join(dir, 'gold_pairs.jsonl'), goldLines);
  const agreement = selfGoldAgreement(judgedLines, goldLines);
  const keepSelf = keepsSelfLabels(agreement, gold.minSelfAgreement, gold.discardSelfLabels === true);
  // Experiments only: the annotator made wrong on an exact share of its pairs, the same ones on a re-executed stage.
  const noisy = flipRoundLabels(goldLines, gold.labelNoiseRate ?? 0, deriveSeed(spec.seed, round, 'round-gold-label-noise'));
  const merged = mergeGoldLabels(trainLines, noisy.pairs, asked, keepSelf);
  if (gold.labelNoiseRate) metrics['judge/gold_flipped'] = noisy.flipped.length;
  metrics['judge/gold_pairs'] = goldLines.length;
  metrics['judge/gold_compared'] = agreement.compared;
  if (agreement.compared > 0) metrics['judge/self_gold_agreement'] = agreement.agreed / agreement.compared;
  metrics['judge/self_labels_kept'] = keepSelf ? merged.length - goldLines.length : 0;
  return { lines: merged, goldPairs: { uri: written.uri, sha256: written.sha256, sizeBytes: written.sizeBytes } };
}
