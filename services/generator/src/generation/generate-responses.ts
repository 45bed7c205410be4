import { ArtifactError, type ArtifactInfo, type DataPrompt, type ArtifactStore, finishOutput, JsonlWriter, outputTarget, type OutputTarget } from '@alignment/artifacts';
import { AlreadyExistsError, InvalidArgumentError } from '@alignment/errors';
import {
  LmArgumentError,
  acquireCausalModel,
  generateWith,
  stringPromptEncoding,
  promptProblem,
  type CausalModel,
  type CausalModelRef,
  type ModelCache,
  type OpenAiEndpoint,
  type PromptToGenerate,
} from '@alignment/lm';
import type { PromptEncoding } from '@alignment/contracts';
import { requireShard, type ShardSpec } from '@alignment/service-kit';
import { resolveSamplingParams, type GenerationParamsInput } from './params';
import { loadPromptSet, type PromptSource } from './prompts';

/** One Generate request, as the domain sees it (service.ts maps the proto onto it). */
export interface GenerationJob {
  /** The policy's ONNX export directory (request field `model.onnx`) and the server serving it (`model.openai`), if any. */
  model: CausalModelRef | undefined;
  prompts: PromptSource | undefined;
  params: GenerationParamsInput | undefined;
  shard: ShardSpec | undefined;
  /** Where to write the responses JSONL; empty = the artifact store chooses. */
  outputUri: string;
  /** How string prompts are encoded (request field `prompt_encoding`); unset = raw text. */
  promptEncoding?: PromptEncoding;
}

export interface GenerationDeps {
  models: ModelCache<CausalModel, OpenAiEndpoint>;
  store: ArtifactStore;
  /** KV-cache rows decoded together (prompts × n); the runtime's default when unset. */
  batchRows?: number;
}

export interface GenerationProgress {
  /** Prompts of the shard done / in the shard. */
  done: number;
  total: number;
  tokensPerSecond: number;
  etaSeconds: number;
}

export interface GenerationOutcome {
  responses: ArtifactInfo;
  numPrompts: number;
  numResponses: number;
  numGeneratedTokens: number;
  tokensPerSecond: number;
}

/** One line of the responses artifact (generator.proto GenerateResult.responses; formats.proto ResponsesRecord). */
export interface ResponsesRecord {
  prompt_index: number;
  id?: string | number;
  /** As the prompt set gave it: text, or a conversation (a list of {"role", "content"}). */
  prompt: DataPrompt;
  responses: string[];
  finish_reasons: string[];
}

/**
 * Where the output goes: the store's choice, or the client's output_uri, checked before any work (a directory, a NUL
 * or an overlong name is INVALID_ARGUMENT on output_uri, not INTERNAL once the work is done: tools/fuzz).
 */
async function outputPath(job: GenerationJob, store: ArtifactStore): Promise<OutputTarget> {
  const staging = () => store.allocate('responses', 'jsonl');
  if (job.outputUri.trim() === '') return { local: staging() };
  try {
    // Confined first (ARTIFACT_ROOTS, or S3_ARTIFACT_ROOTS for s3://), then checked before any work: a directory, a NUL
    // or an overlong name failed at the final rename or the open, as INTERNAL (EISDIR, ENAMETOOLONG), after all the
    // work (issue 12, tools/fuzz). An s3:// output is written to the store, then published (finishOutput).
    return await outputTarget(job.outputUri, 'output_uri', staging);
  } catch (error) {
    if (error instanceof ArtifactError) throw new InvalidArgumentError('output_uri', error.message);
    throw error;
  }
}

/** Publishes an s3:// output once written; other content published there is ALREADY_EXISTS, a failed upload INVALID_ARGUMENT, on output_uri. */
function published(target: OutputTarget, written: ArtifactInfo): Promise<ArtifactInfo> {
  return finishOutput(target, written, 'output_uri').catch((error: unknown) => {
    if (error instanceof ArtifactError && error.kind === 'exists') throw new AlreadyExistsError('output_uri', error.message);
    if (error instanceof ArtifactError) throw new InvalidArgumentError('output_uri', error.message);
    throw error;
  });
}

/**
 * Opens the output; a client-named path that cannot be written is INVALID_ARGUMENT on output_uri. The output never
 * replaces a file (issue 12): where one is there by the commit, the same bytes are this work done before (a retried
 * call) and the commit succeeds; other bytes are ALREADY_EXISTS on output_uri (commitOutput).
 */
function openOutput(job: GenerationJob, destination: string): Promise<JsonlWriter> {
  return JsonlWriter.open(destination, { existing: 'keep' }).catch((error: unknown) => {
    if (error instanceof ArtifactError && job.outputUri.trim() !== '') throw new InvalidArgumentError('output_uri', error.message);
    throw error;
  });
}

function commitOutput(writer: JsonlWriter): Promise<ArtifactInfo> {
  return writer.commit().catch((error: unknown) => {
    if (error instanceof ArtifactError && error.kind === 'exists') throw new AlreadyExistsError('output_uri', error.message);
    throw error;
  });
}

/**
 * Generates params.n responses for each prompt of the job's shard and writes them, in prompt order, as a responses
 * JSONL artifact (atomically: it appears under its name complete, with its sha256, or not at all). Progress is
 * reported after every batch. Aborting the signal stops the work within one decoding step; nothing is written then.
 */
export async function generateResponses(
  job: GenerationJob,
  deps: GenerationDeps,
  hooks: { signal?: AbortSignal; onProgress?: (progress: GenerationProgress) => void } = {},
): Promise<GenerationOutcome> {
  const shard = requireShard('shard', job.shard);
  const params = resolveSamplingParams(job.params);
  const strings = stringPromptEncoding(job.promptEncoding);
  const destination = await outputPath(job, deps.store);
  const set = await loadPromptSet(job.prompts, shard);
  const lease = await acquireCausalModel(deps.models, job.model, 'model');
  try {
    const model = lease.value;
    if (strings === 'chat-template' && !model.tokenizer.hasChatTemplate) {
      throw new InvalidArgumentError('prompt_encoding', 'is PROMPT_ENCODING_CHAT_TEMPLATE but the model directory has no chat template: encode the prompts as raw text');
    }
    // Every prompt is checked before anything is written: one that the chat template refuses or that leaves no
    // room for a response fails the request up front, not after hours of generation.
    const items: PromptToGenerate[] = set.prompts.map((p) => {
      let promptIds: number[];
      try {
        promptIds = model.tokenizer.encodePrompt(p.prompt, { strings });
      } catch (error) {
        if (error instanceof LmArgumentError) throw new InvalidArgumentError(set.fieldOf(p.index), error.reason);
        throw error;
      }
      const problem = promptProblem(model, promptIds);
      if (problem) throw new InvalidArgumentError(set.fieldOf(p.index), problem);
      return { index: p.index, promptIds };
    });
    const byIndex = new Map(set.prompts.map((p) => [p.index, p]));
    const writer = await openOutput(job, destination.local);
    try {
      const started = Date.now();
      let done = 0;
      let responses = 0;
      let tokens = 0;
      for await (const batch of generateWith(model, items, params, { signal: hooks.signal, maxBatchRows: deps.batchRows })) {
        for (const result of batch) {
          const prompt = byIndex.get(result.index)!;
          const record: ResponsesRecord = {
            prompt_index: result.index,
            ...(prompt.id !== undefined ? { id: prompt.id } : {}),
            prompt: prompt.prompt,
            responses: result.samples.map((s) => s.text),
            finish_reasons: result.samples.map((s) => s.finishReason),
          };
          await writer.append(record);
          responses += result.samples.length;
          tokens += result.samples.reduce((sum, s) => sum + s.tokenIds.length, 0);
        }
        done += batch.length;
        const seconds = (Date.now() - started) / 1000;
        const perPrompt = seconds / done;
        hooks.onProgress?.({
          done,
          total: items.length,
          tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
          etaSeconds: perPrompt * (items.length - done),
        });
      }
      const info = await published(destination, await commitOutput(writer));
      const seconds = (Date.now() - started) / 1000;
      return {
        responses: info,
        numPrompts: items.length,
        numResponses: responses,
        numGeneratedTokens: tokens,
        tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
      };
    } catch (error) {
      await writer.abort();
      throw error;
    }
  } finally {
    lease.release();
  }
}
