import * as path from 'node:path';
import { Stage, type ArtifactRef, type ModelRef } from '@alignment/contracts';
import { readPrompts, writeJsonl } from '../data';
import { readPinned } from '../evaluate';
import { roundFractions, splitPrompts } from '../prompt-split';
import { generateSharded } from '../shards';
import { fileOutput, learnedModel, specInput, type StageDefinition, type StageInput, type StageResult } from './stage';

type GenerateInputs = {
  /** π_{t−1}. */
  model: StageInput<ModelRef | undefined>;
  /** The round's prompt set, or the one file that prompt_split slices. */
  prompts: StageInput<ArtifactRef | undefined>;
};

/** GENERATE (round t ≥ 1): π_{t−1} samples responses to the round's prompts, sharded over the generators. */
export const generateStage: StageDefinition<GenerateInputs> = {
  stage: Stage.STAGE_GENERATE,

  inputs(spec, round, outputs) {
    const prompts = spec.prompts?.$case === 'roundPrompts' ? spec.prompts.value.rounds[round - 1] : spec.prompts?.value.prompts;
    return { model: outputs.model(round - 1), prompts: specInput(prompts) };
  },

  async execute(inputs, { spec, round, dir, seed, executors, call }) {
    const result: StageResult = { outputs: {}, metrics: {} };
    let promptsRef: ArtifactRef;
    let prompts: string[];
    if (spec.prompts?.$case === 'roundPrompts') {
      promptsRef = inputs.prompts.value!;
      prompts = (await readPrompts(await readPinned(promptsRef, `round ${round}'s prompts`))).map((p) => p.prompt);
    } else {
      const split = spec.prompts!.value;
      const all = await readPrompts(await readPinned(inputs.prompts.value!, 'the prompt file'));
      const fractions = roundFractions(split.roundFractions, spec.rounds)!;
      const [start, end] = splitPrompts(all.length, fractions, split.seedFraction ?? 0).rounds[round - 1];
      const slice = all.slice(start, end);
      const info = await writeJsonl(path.join(dir, 'prompts.jsonl'), slice.map((p) => p.value));
      promptsRef = { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes };
      result.outputs.prompts = fileOutput(promptsRef);
      prompts = slice.map((p) => p.prompt);
    }
    const generation = spec.generation ?? { n: 0, topK: 0, maxNewTokens: 0, stop: [], seed: 0, greedy: false };
    const generated = await generateSharded(
      {
        executor: executors.generate,
        request: {
          model: learnedModel(inputs.model, round - 1),
          prompts: { $case: 'promptSet', value: promptsRef },
          params: { ...generation, n: generation.n || 2, seed },
        },
        prompts,
        shards: spec.sharding?.generatorShards ?? 0,
        workDir: path.join(dir, 'work'),
        name: 'responses',
        destination: path.join(dir, 'responses.jsonl'),
      },
      call,
    );
    result.outputs.responses = fileOutput(generated.responses);
    result.metrics['generate/num_prompts'] = prompts.length;
    result.metrics['generate/num_responses'] = generated.numResponses;
    result.metrics['generate/num_generated_tokens'] = generated.numGeneratedTokens;
    return result;
  },
};
