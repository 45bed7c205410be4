import { PromptEncoding, Stage, type ArtifactRef, type ModelRef } from '@alignment/contracts';
import { promptEncodingInput } from '../prompt-encoding';
import { deriveSeed } from '../seeds';
import { referenceModel, servedPolicy } from './engine-models';
import { fileOutput, learnedModel, specInput, type StageDefinition, type StageInput } from './stage';

type EvaluateInputs = {
  /** π_t, this round's LEARN output. */
  policy: StageInput<ModelRef | undefined>;
  /** The held-out prompts. */
  prompts: StageInput<ArtifactRef | undefined>;
  /** Rounds ≥ 1: π_init's fixed samples, from round 0's EVALUATE. */
  baseline?: StageInput<ArtifactRef | undefined>;
  /** Rounds ≥ 1: the round's self-labelled pairs. */
  pairs?: StageInput<ArtifactRef | undefined>;
  /** spec.prompt_encoding, when not raw text. */
  promptEncoding?: StageInput<PromptEncoding>;
};

/** EVALUATE: π_t against π_init on the held-out prompts (the evaluator, PairwiseEvaluator by default). */
export const evaluateStage: StageDefinition<EvaluateInputs> = {
  stage: Stage.STAGE_EVALUATE,

  inputs(spec, round, outputs) {
    const inputs: EvaluateInputs = { policy: outputs.model(round), prompts: specInput(spec.evaluation?.prompts), ...promptEncodingInput(spec) };
    if (round > 0) {
      inputs.baseline = outputs.input(0, Stage.STAGE_EVALUATE, 'baseline');
      inputs.pairs = outputs.input(round, Stage.STAGE_JUDGE, 'pairs');
    }
    return inputs;
  },

  async execute(inputs, ctx) {
    const { spec, round, dir, seed, executors, call } = ctx;
    const evaluation = spec.evaluation!;
    const evaluated = await executors.evaluate.evaluate(
      {
        round,
        // With spec.engine, π_t and π_init are sampled (and scored) on the engine (engine-models.ts).
        policy: await servedPolicy(ctx, round, learnedModel(inputs.policy, round)),
        baseModel: referenceModel(spec),
        prompts: inputs.prompts.value!,
        // Evaluation samples like the rounds unless it has its own sampling parameters.
        config: { ...evaluation, generation: evaluation.generation ?? spec.generation },
        promptEncoding: inputs.promptEncoding?.value ?? PromptEncoding.PROMPT_ENCODING_RAW_TEXT,
        baseline: round > 0 ? inputs.baseline!.value! : undefined,
        selfLabelledPairs: round > 0 ? inputs.pairs!.value! : undefined,
        seeds: { policy: seed, baseline: deriveSeed(spec.seed, 0, 'eval-baseline'), bootstrap: deriveSeed(spec.seed, round, 'eval-bootstrap') },
        generatorShards: spec.sharding?.generatorShards ?? 0,
        judgeShards: spec.sharding?.judgeShards ?? 0,
        dir,
      },
      call,
    );
    return {
      outputs: Object.fromEntries(Object.entries(evaluated.outputs).map(([name, ref]) => [name, fileOutput(ref)])),
      metrics: evaluated.metrics,
      warnings: evaluated.warnings,
    };
  },
};
