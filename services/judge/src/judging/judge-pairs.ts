import { ArtifactError, type ArtifactInfo, type DataPrompt, type ArtifactStore, finishOutput, JsonlWriter, outputTarget, type OutputTarget } from '@alignment/artifacts';
import { AlreadyExistsError, CancelledError, InvalidArgumentError } from '@alignment/errors';
import type { PromptEncoding } from '@alignment/contracts';
import { acquireCausalModel, acquireModel, stringPromptEncoding, type CausalModel, type CausalModelRef, type ModelCache, type ModelLocation, type OpenAiEndpoint, type RewardModel } from '@alignment/lm';
import { requireFinite, requireShard, type ShardSpec } from '@alignment/service-kit';
import { readResponses, responsesPath, type ResponsesRecord } from './responses';
import { getRule, listRules } from './rules';
import { LlmJudgeScorer, RewardModelScorer, RuleScorer, SpaImplicitScorer, type Candidate, type PairScorer } from './pair-scorers';
import { responsesToScore, selectPair, type PairingName } from './pairing';
import { dropsPair, finishedFlags, penalizedScores, resolveUnfinishedPolicy, type UnfinishedPolicyName } from './unfinished';

export type JudgeMethodName = 'spa_implicit' | 'reward_model' | 'llm_as_judge' | 'rule';

/** DPO β of the SPA tie tolerance when the request leaves it unset (judge.proto SpaImplicitJudge.beta). */
export const DEFAULT_BETA = 0.1;

/** One JudgePairs request, as the domain sees it (service.ts maps the proto onto it). */
export interface JudgeJob {
  method: JudgeMethodName | undefined;
  responses: { uri: string; sha256: string } | undefined;
  spaImplicit?: { policy?: CausalModelRef; reference?: CausalModelRef; beta?: number; tieTolerance: number; lengthPenalty: number };
  rewardModel?: { model?: ModelLocation; tieTolerance: number };
  llmAsJudge?: { model?: CausalModelRef; tieTolerance: number };
  rule?: { rule: string; tieTolerance: number };
  shard?: ShardSpec;
  outputUri: string;
  /** Which two responses form a prompt's pair (pairing.ts); unset = first_two. */
  pairing?: PairingName;
  /** What becomes of a pair with a response cut at max_new_tokens (unfinished.ts); unset = drop. */
  unfinishedPairs?: UnfinishedPolicyName;
  /** Subtracted from an unfinished response's score with unfinishedPairs = penalize; unset = 1. */
  unfinishedPenalty?: number;
  /** How string prompts are scored by spa_implicit (request field `prompt_encoding`); unset = raw text. */
  promptEncoding?: PromptEncoding;
}

export interface JudgeDeps {
  /** Policy, reference and LLM judges, on ONNX Runtime or an OpenAI-compatible server (ModelRef.openai). */
  languageModels: ModelCache<CausalModel, OpenAiEndpoint>;
  rewardModels: ModelCache<RewardModel>;
  store: ArtifactStore;
  /** Pairs scored per model pass (and between progress reports). Default 32. */
  chunkSize?: number;
}

/** judge.proto JudgeCounts. */
export interface JudgeCounts {
  numPrompts: number;
  numPairs: number;
  droppedIdentical: number;
  droppedTies: number;
  droppedInvalid: number;
}

/** judge.proto UnfinishedCounts: pairs with a response cut at max_new_tokens. */
export interface UnfinishedCounts {
  /** Dropped for it (policy drop). */
  dropped: number;
  /** Written with at least one unfinished response (penalize, keep). */
  inPairs: number;
}

export interface JudgeOutcome {
  pairs: ArtifactInfo;
  counts: JudgeCounts;
  unfinished: UnfinishedCounts;
}

export interface JudgeProgress {
  /** Prompts of the shard done / in the shard. */
  done: number;
  total: number;
  etaSeconds: number;
}

/** One line of the labelled-pairs artifact (judge.proto JudgePairsResult.pairs; formats.proto LabelledPair); the trainer reads it as is. */
export interface LabelledPair {
  prompt_index: number;
  id?: string | number;
  /** As the responses gave it: text, or a conversation (the trainer reads either). */
  prompt: DataPrompt;
  chosen: string;
  rejected: string;
  chosen_score: number;
  rejected_score: number;
  /** chosen_score − rejected_score (> 0). */
  margin: number;
  method: JudgeMethodName;
  /** Whether each side ended by itself (false: cut at max_new_tokens); written when the responses carried finish reasons. */
  chosen_finished?: boolean;
  rejected_finished?: boolean;
}

const CONFIG_FIELDS = { spa_implicit: 'spaImplicit', reward_model: 'rewardModel', llm_as_judge: 'llmAsJudge', rule: 'rule' } as const;

/** A scorer for the job's method, with the models it holds; `release` hands them back. */
interface Method {
  name: JudgeMethodName;
  tolerance: number;
  /** Whether each response gets a score of its own, so that any number of them can be ranked (best_worst). */
  pointwise: boolean;
  open(deps: JudgeDeps): Promise<{ scorer: PairScorer; release(): void }>;
}

function requireNonNegative(field: string, value: number): number {
  requireFinite(field, value);
  if (value < 0) throw new InvalidArgumentError(field, `must be >= 0, got ${value}`);
  return value;
}

/** Checks the method and its configuration (the one named must be set, the others unset). */
export function resolveMethod(job: JudgeJob): Method {
  if (!job.method) throw new InvalidArgumentError('method', `is required: one of ${Object.keys(CONFIG_FIELDS).join(', ')}`);
  for (const [name, key] of Object.entries(CONFIG_FIELDS)) {
    const set = job[key] !== undefined;
    if (name === job.method && !set) throw new InvalidArgumentError(name, `is required when method is ${job.method}`);
    if (name !== job.method && set) throw new InvalidArgumentError(name, `must be unset when method is ${job.method}`);
  }
  switch (job.method) {
    case 'spa_implicit': {
      const config = job.spaImplicit!;
      const beta = config.beta ?? DEFAULT_BETA;
      requireFinite('spa_implicit.beta', beta);
      if (beta <= 0) throw new InvalidArgumentError('spa_implicit.beta', `must be > 0, got ${beta}`);
      const lengthPenalty = requireNonNegative('spa_implicit.length_penalty', config.lengthPenalty);
      const strings = stringPromptEncoding(job.promptEncoding);
      return {
        name: 'spa_implicit',
        pointwise: true,
        tolerance: requireNonNegative('spa_implicit.tie_tolerance', config.tieTolerance),
        open: async (deps) => {
          const policy = await acquireCausalModel(deps.languageModels, config.policy, 'spa_implicit.policy');
          try {
            const reference = await acquireCausalModel(deps.languageModels, config.reference, 'spa_implicit.reference');
            if (strings === 'chat-template' && !(policy.value.tokenizer.hasChatTemplate && reference.value.tokenizer.hasChatTemplate)) {
              reference.release();
              throw new InvalidArgumentError('prompt_encoding', 'is PROMPT_ENCODING_CHAT_TEMPLATE but the policy or reference model directory has no chat template: encode the prompts as raw text');
            }
            return {
              scorer: new SpaImplicitScorer(policy.value, reference.value, beta, lengthPenalty, strings),
              release: () => {
                policy.release();
                reference.release();
              },
            };
          } catch (error) {
            policy.release();
            throw error;
          }
        },
      };
    }
    case 'reward_model': {
      const config = job.rewardModel!;
      return {
        name: 'reward_model',
        pointwise: true,
        tolerance: requireNonNegative('reward_model.tie_tolerance', config.tieTolerance),
        open: async (deps) => {
          const model = await acquireModel(deps.rewardModels, config.model, 'reward_model.reward_model.onnx');
          return { scorer: new RewardModelScorer(model.value), release: () => model.release() };
        },
      };
    }
    case 'llm_as_judge': {
      const config = job.llmAsJudge!;
      return {
        name: 'llm_as_judge',
        // Its scores come from comparing exactly two responses (pair-scorers.ts).
        pointwise: false,
        tolerance: requireNonNegative('llm_as_judge.tie_tolerance', config.tieTolerance),
        open: async (deps) => {
          const model = await acquireCausalModel(deps.languageModels, config.model, 'llm_as_judge.judge_model');
          if (!model.value.tokenizer.hasChatTemplate) {
            model.release();
            throw new InvalidArgumentError('llm_as_judge.judge_model', 'has no chat template: the judging question is a user turn of it (SPA Listing 1)');
          }
          return { scorer: new LlmJudgeScorer(model.value), release: () => model.release() };
        },
      };
    }
    case 'rule': {
      const config = job.rule!;
      const verify = getRule(config.rule);
      if (!verify) {
        throw new InvalidArgumentError('rule.rule', `unknown rule '${config.rule}'; registered: ${listRules().map((r) => r.name).join(', ')}`);
      }
      return {
        name: 'rule',
        pointwise: true,
        tolerance: requireNonNegative('rule.tie_tolerance', config.tieTolerance),
        open: async () => ({ scorer: new RuleScorer(config.rule, verify), release: () => undefined }),
      };
    }
    default:
      throw new InvalidArgumentError('method', `unknown method '${String(job.method)}'`);
  }
}

/** The job's pairing, checked against its method: best_worst ranks responses, so it needs pointwise scores. */
function resolvePairing(job: JudgeJob, method: Method): PairingName {
  const pairing = job.pairing ?? 'first_two';
  if (pairing === 'best_worst' && !method.pointwise) {
    throw new InvalidArgumentError('pairing', `PAIRING_BEST_WORST needs a method that scores responses one at a time, not ${method.name}`);
  }
  return pairing;
}

/**
 * Labels one pair from its scores: chosen = higher (SPA Eq. 8). A tie (equal scores, or |scale·(s1 − s2)| below
 * the tolerance) has no preference to learn from and is dropped.
 */
export function labelPair(
  record: Pick<ResponsesRecord, 'promptIndex' | 'id' | 'prompt'>,
  responses: readonly [string, string],
  scores: readonly [number, number],
  method: JudgeMethodName,
  tieScale: number,
  tolerance: number,
): LabelledPair | 'tie' {
  const [s1, s2] = scores;
  if (s1 === s2 || Math.abs(tieScale * (s1 - s2)) < tolerance) return 'tie';
  const first = s1 > s2;
  return {
    prompt_index: record.promptIndex,
    ...(record.id !== undefined ? { id: record.id } : {}),
    prompt: record.prompt,
    chosen: first ? responses[0] : responses[1],
    rejected: first ? responses[1] : responses[0],
    chosen_score: first ? s1 : s2,
    rejected_score: first ? s2 : s1,
    margin: Math.abs(s1 - s2),
    method,
  };
}

/**
 * Where the output goes: the store's choice, or the client's output_uri, checked before any work (a directory, a NUL
 * or an overlong name is INVALID_ARGUMENT on output_uri, not INTERNAL once the work is done: tools/fuzz).
 */
async function outputPath(job: JudgeJob, store: ArtifactStore): Promise<OutputTarget> {
  const staging = () => store.allocate('pairs', 'jsonl');
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
function openOutput(job: JudgeJob, destination: string): Promise<JsonlWriter> {
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
 * Labels one pair of responses of each prompt of the job's shard (the first two, or the best and worst: pairing.ts)
 * by the job's method and writes the labelled pairs, in prompt order, as a JSONL artifact (atomically, with its
 * sha256). Identical responses, ties and pairs that cannot be scored (an empty response, fewer than two, longer
 * than a model's context) are dropped and counted, and so are pairs with a response cut at max_new_tokens under the
 * default unfinished-pairs policy (unfinished.ts). Progress is reported after every chunk of pairs; aborting the signal stops the work and writes nothing.
 */
export async function judgePairs(
  job: JudgeJob,
  deps: JudgeDeps,
  hooks: { signal?: AbortSignal; onProgress?: (progress: JudgeProgress) => void } = {},
): Promise<JudgeOutcome> {
  const method = resolveMethod(job);
  const pairing = resolvePairing(job, method);
  const unfinishedPolicy = resolveUnfinishedPolicy(job.unfinishedPairs, job.unfinishedPenalty);
  const shard = requireShard('shard', job.shard);
  const destination = await outputPath(job, deps.store);
  const path = await responsesPath(job.responses);
  let total = 0;
  for await (const _ of readResponses(path, shard)) total += 1;

  const { scorer, release } = await method.open(deps);
  const counts: JudgeCounts = { numPrompts: 0, numPairs: 0, droppedIdentical: 0, droppedTies: 0, droppedInvalid: 0 };
  const unfinished: UnfinishedCounts = { dropped: 0, inPairs: 0 };
  const writer = await openOutput(job, destination.local);
  const started = Date.now();
  try {
    const chunkSize = Math.max(1, deps.chunkSize ?? 32);
    let chunk: { record: ResponsesRecord; candidate: Candidate }[] = [];
    const flush = async () => {
      const scores = await scorer.score(chunk.map((c) => c.candidate), hooks.signal);
      for (const [k, { record, candidate }] of chunk.entries()) {
        const result = scores[k];
        if ('invalid' in result) {
          counts.droppedInvalid += 1;
          continue;
        }
        const finished = finishedFlags(record, candidate.responses);
        const selected = selectPair(candidate.responses, penalizedScores(unfinishedPolicy, result.scores, finished), pairing);
        const selectedFinished = finishedFlags(record, selected.responses);
        if (dropsPair(unfinishedPolicy, selectedFinished)) {
          unfinished.dropped += 1;
          continue;
        }
        const pair = labelPair(record, selected.responses, selected.scores, method.name, scorer.tieScale, method.tolerance);
        if (pair === 'tie') counts.droppedTies += 1;
        else {
          if (record.finished) {
            const firstChosen = pair.chosen === selected.responses[0];
            pair.chosen_finished = firstChosen ? selectedFinished[0] : selectedFinished[1];
            pair.rejected_finished = firstChosen ? selectedFinished[1] : selectedFinished[0];
          }
          await writer.append(pair);
          counts.numPairs += 1;
          if (selectedFinished.some((f) => !f)) unfinished.inPairs += 1;
        }
      }
      chunk = [];
      const perPrompt = (Date.now() - started) / 1000 / Math.max(1, counts.numPrompts);
      hooks.onProgress?.({ done: counts.numPrompts, total, etaSeconds: perPrompt * (total - counts.numPrompts) });
    };
    for await (const record of readResponses(path, shard)) {
      if (hooks.signal?.aborted) break;
      counts.numPrompts += 1;
      const responses = responsesToScore(record.responses, pairing);
      if (responses === 'invalid') counts.droppedInvalid += 1;
      else if (responses === 'identical') counts.droppedIdentical += 1;
      // The first two need no scores to be chosen, so a pair the policy drops is not scored at all.
      else if (pairing === 'first_two' && dropsPair(unfinishedPolicy, finishedFlags(record, responses))) unfinished.dropped += 1;
      else {
        const finished = finishedFlags(record, responses);
        chunk.push({ record, candidate: { promptIndex: record.promptIndex, prompt: record.prompt, responses, finished } });
      }
      if (chunk.length >= chunkSize) await flush();
    }
    if (!hooks.signal?.aborted) await flush();
    if (hooks.signal?.aborted) throw new CancelledError();
    return { pairs: await published(destination, await commitOutput(writer)), counts, unfinished };
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    release();
  }
}
