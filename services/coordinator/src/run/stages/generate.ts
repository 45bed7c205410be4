import * as path from 'node:path';
import { promptKey } from '@alignment/artifacts';
import { PromptEncoding, RoundPromptOverlap, Stage, type ArtifactRef, type ModelRef, type RunSpec } from '@alignment/contracts';
import { readPairs, readPrompts, writeJsonl, type PromptRecord } from '../data';
import { promptEncodingInput } from '../prompt-encoding';
import { readPinned } from '../evaluate';
import { roundFractions, splitPrompts } from '../prompt-split';
import { deduplicateRounds, overlapPolicy } from '../round-prompts';
import { generateSharded } from '../shards';
import { referenceModel, servedPolicy } from './engine-models';
import { fileOutput, learnedModel, specInput, type StageDefinition, type StageInput, type StageResult } from './stage';

type GenerateInputs = {
  /** π_{t−1}, or π_init with spec.sample_from_init. */
  model: StageInput<ModelRef | undefined>;
  /** The round's prompt set, or the one file that prompt_split slices. */
  prompts: StageInput<ArtifactRef | undefined>;
  /** spec.prompt_encoding, when not raw text. */
  promptEncoding?: StageInput<PromptEncoding>;
};

/**
 * GENERATE (round t ≥ 1): π_{t−1} (or π_init, with spec.sample_from_init) samples responses to the round's prompts,
 * sharded over the generators.
 */
export const generateStage: StageDefinition<GenerateInputs> = {
  stage: Stage.STAGE_GENERATE,

  inputs(spec, round, outputs) {
    const prompts = spec.prompts?.$case === 'roundPrompts' ? spec.prompts.value.rounds[round - 1] : spec.prompts?.value.prompts;
    const model = spec.sampleFromInit ? initModel(spec) : outputs.model(round - 1);
    return { model, prompts: specInput(prompts), ...promptEncodingInput(spec) };
  },

  async execute(inputs, ctx) {
    const { spec, round, dir, seed, executors, call } = ctx;
    const result: StageResult = { outputs: {}, metrics: {} };
    const rounds = await roundPromptRecords(spec, inputs.prompts.value!, round);
    let records = rounds[round - 1];
    let promptsRef: ArtifactRef | undefined = spec.prompts?.$case === 'roundPrompts' ? inputs.prompts.value! : undefined;
    if (overlapPolicy(spec) === RoundPromptOverlap.ROUND_PROMPT_OVERLAP_DEDUPLICATE) {
      const seedPrompts = new Set((await readPairs(await readPinned(spec.seedPairs!, 'the seed pairs'))).map((p) => promptKey(p.prompt)));
      const { kept, dropped } = deduplicateRounds(seedPrompts, rounds.map((r) => r.map((p) => promptKey(p.prompt))))[round - 1];
      result.metrics['generate/dropped_repeated_prompts'] = dropped;
      if (dropped > 0) {
        records = kept.map((i) => records[i]);
        promptsRef = undefined;
      }
    }
    if (!promptsRef) {
      // The round's prompts as the generator reads them: a slice of the split file, or the set less its repeats.
      const info = await writeJsonl(path.join(dir, 'prompts.jsonl'), records.map((p) => p.value));
      promptsRef = { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes };
      result.outputs.prompts = fileOutput(promptsRef);
    }
    const prompts = records.map((p) => p.prompt);
    const generation = spec.generation ?? { n: 0, topK: 0, maxNewTokens: 0, stop: [], seed: 0, greedy: false };
    // With spec.engine, π_{t−1} is sampled on the engine, which loads it first, and π_init is served from the start
    // (engine-models.ts).
    const model = spec.sampleFromInit ? referenceModel(spec) : await servedPolicy(ctx, round - 1, learnedModel(inputs.model, round - 1));
    const generated = await generateSharded(
      {
        executor: executors.generate,
        request: {
          model,
          prompts: { $case: 'promptSet', value: promptsRef },
          params: { ...generation, n: generation.n || 2, seed },
          promptEncoding: inputs.promptEncoding?.value ?? PromptEncoding.PROMPT_ENCODING_RAW_TEXT,
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

/** π_init as GENERATE's input, identified by its ONNX export (what the generator runs). */
function initModel(spec: RunSpec): StageInput<ModelRef | undefined> {
  return { value: spec.baseModel, identity: specInput(spec.baseModel?.onnx).identity };
}

/** The prompts of rounds 1..round (index t − 1 for round t), each in file order. */
async function roundPromptRecords(spec: RunSpec, current: ArtifactRef, round: number): Promise<PromptRecord[][]> {
  if (spec.prompts?.$case === 'roundPrompts') {
    const sets = spec.prompts.value.rounds;
    const lists: PromptRecord[][] = [];
    for (let t = 1; t <= round; t++) {
      lists.push(await readPrompts(await readPinned(t === round ? current : sets[t - 1], `round ${t}'s prompts`)));
    }
    return lists;
  }
  const split = spec.prompts!.value;
  const all = await readPrompts(await readPinned(current, 'the prompt file'));
  const fractions = roundFractions(split.roundFractions, spec.rounds)!;
  return splitPrompts(all.length, fractions, split.seedFraction ?? 0).rounds.slice(0, round).map(([start, end]) => all.slice(start, end));
}
