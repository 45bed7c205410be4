import * as path from 'node:path';
import { sha256File, toLocalPath } from '@alignment/artifacts';
import { JudgeMethod, type ArtifactRef, type JudgePairsRequest } from '@alignment/contracts';
import { readObjects, readPrompts, writeJsonl, type JsonObject } from './data';
import {
  StageFailedError,
  type CallContext,
  type EvaluateExecutor,
  type EvaluateRequest,
  type EvaluateResult,
  type GenerateExecutor,
  type JudgeExecutor,
} from './executors';
import { lengthControlledWinRate } from './length-controlled';
import { mean, winRate, type Outcome } from './metrics';
import { generateSharded, judgeSharded } from './shards';

/** Samples of π_t per held-out prompt when EvaluationConfig.samples_per_prompt is 0 (docs/benchmark.md: one was too few). */
export const DEFAULT_SAMPLES_PER_PROMPT = 4;

/** Reads a file the run pinned, refusing it when its content changed since (a resumed run must see the same data). */
export async function readPinned(ref: ArtifactRef, what: string): Promise<string> {
  const file = toLocalPath(ref.uri);
  if (ref.sha256) {
    const actual = await sha256File(file).catch(() => undefined);
    if (actual !== ref.sha256) {
      throw new StageFailedError(`${what} ${file} changed since the run started (sha256 ${actual ?? 'missing'}, pinned ${ref.sha256})`);
    }
  }
  return file;
}

/**
 * Evaluation of docs/algorithm.md §2 / docs/benchmark.md: π_t samples `samples_per_prompt` responses per held-out prompt,
 * each compared with π_init's one fixed sample for that prompt (generated once per run, in round 0) by the
 * configured evaluator — a RULE judge (the gold annotator: its rule decides wins) or a reward model. Pairs the
 * judge drops (identical responses, ties, unscorable) count as ties. With evaluation.gold_judge_address, every
 * judgement of the stage goes to the Judge service there (your own gold annotator) instead of the stack's judge.
 *
 * Metrics: eval/win_rate (ties half) with eval/win_rate_ci_low/high (95%, bootstrap over prompts, see metrics.ts),
 * eval/lc_win_rate (the win rate had both responses been equally long, length-controlled.ts),
 * eval/wins|ties|losses|comparisons, eval/gold_reward and eval/init_gold_reward (mean score of π_t's and of
 * π_init's samples when a RULE judge returns scores; eval/reward and eval/init_reward for a reward model),
 * eval/mean_length and eval/init_mean_length (characters), eval/dropped_identical|ties|invalid; in rounds ≥ 1 with
 * a RULE evaluator also judge/self_label_accuracy: how often the round's self-labels agree with the rule (the pairs
 * the round trained on, less those the round's gold annotator labelled).
 */
export class PairwiseEvaluator implements EvaluateExecutor {
  constructor(
    private readonly generator: GenerateExecutor,
    private readonly judge: JudgeExecutor,
    private readonly goldJudge?: (address: string) => JudgeExecutor,
  ) {}

  /** Who judges the evaluation: the gold judge of evaluation.gold_judge_address, else the stack's judge. */
  private evaluatorJudge(config: EvaluateRequest['config']): JudgeExecutor {
    const address = config.goldJudgeAddress;
    if (!address) return this.judge;
    if (!this.goldJudge) throw new StageFailedError(`evaluation.gold_judge_address ${address}: this coordinator cannot call a gold judge`);
    return this.goldJudge(address);
  }

  async evaluate(request: EvaluateRequest, ctx: CallContext): Promise<EvaluateResult> {
    const config = request.config;
    const samplesPerPrompt = config.samplesPerPrompt || DEFAULT_SAMPLES_PER_PROMPT;
    const promptsFile = await readPinned(request.prompts, 'evaluation prompts');
    const prompts = (await readPrompts(promptsFile)).map((p) => p.prompt);
    const workDir = path.join(request.dir, 'work');
    const outputs: Record<string, ArtifactRef> = {};
    const warnings: string[] = [];
    const generation = config.generation ?? { n: 0, topK: 0, maxNewTokens: 0, stop: [], seed: 0, greedy: false };
    const shardedGenerate = (name: string, model: EvaluateRequest['policy'], n: number, seed: number) =>
      generateSharded(
        {
          executor: this.generator,
          request: { model, prompts: { $case: 'promptSet', value: request.prompts }, params: { ...generation, n, seed }, promptEncoding: request.promptEncoding },
          prompts,
          shards: request.generatorShards,
          workDir,
          name,
          destination: path.join(request.dir, `${name}.jsonl`),
        },
        { ...ctx, label: `${ctx.label} (${name})` },
      );

    let baseline: JsonObject[];
    if (request.baseline) {
      baseline = (await readObjects(await readPinned(request.baseline, "π_init's evaluation sample"))).map((l) => l.value);
    } else {
      const generated = await shardedGenerate('baseline', request.baseModel, 1, request.seeds.baseline);
      outputs.baseline = generated.responses;
      baseline = generated.lines;
    }
    if (baseline.length !== prompts.length) {
      throw new StageFailedError(`π_init's evaluation sample has ${baseline.length} lines for ${prompts.length} prompts`);
    }
    const samples = await shardedGenerate('samples', request.policy, samplesPerPrompt, request.seeds.policy);
    outputs.samples = samples.responses;

    const comparisons: JsonObject[] = [];
    prompts.forEach((prompt, i) => {
      const initResponse = (baseline[i].responses as string[])[0];
      const policyResponses = samples.lines[i].responses as string[];
      for (let k = 0; k < samplesPerPrompt; k++) {
        comparisons.push({ prompt_index: i * samplesPerPrompt + k, prompt, responses: [policyResponses[k], initResponse] });
      }
    });
    const comparisonsInfo = await writeJsonl(path.join(request.dir, 'comparisons.jsonl'), comparisons);
    outputs.comparisons = { uri: comparisonsInfo.uri, sha256: comparisonsInfo.sha256, sizeBytes: comparisonsInfo.sizeBytes };

    const judged = await judgeSharded(
      {
        executor: this.evaluatorJudge(config),
        request: { ...evaluatorRequest(request), responses: outputs.comparisons },
        items: comparisons,
        shards: request.judgeShards,
        workDir,
        name: 'judgements',
        destination: path.join(request.dir, 'judgements.jsonl'),
      },
      { ...ctx, label: `${ctx.label} (judgements)` },
    );
    outputs.judgements = judged.pairs;

    const outcomes: Outcome[][] = prompts.map(() => new Array<Outcome>(samplesPerPrompt).fill(0.5));
    const policyScores: number[] = [];
    const initScores: number[] = [];
    for (const pair of judged.lines) {
      const index = pair.prompt_index as number;
      const [policyResponse] = comparisons[index].responses as string[];
      const i = Math.floor(index / samplesPerPrompt);
      const k = index % samplesPerPrompt;
      const policyChosen = pair.chosen === policyResponse;
      const tie = pair.chosen === pair.rejected || pair.margin === 0 || (pair.chosen_score !== undefined && pair.chosen_score === pair.rejected_score);
      outcomes[i][k] = tie ? 0.5 : policyChosen ? 1 : 0;
      const [policyScore, initScore] = policyChosen ? [pair.chosen_score, pair.rejected_score] : [pair.rejected_score, pair.chosen_score];
      if (typeof policyScore === 'number' && Number.isFinite(policyScore)) policyScores.push(policyScore);
      if (typeof initScore === 'number' && Number.isFinite(initScore)) initScores.push(initScore);
    }
    const rate = winRate(outcomes, request.seeds.bootstrap);
    const lengthControlled = lengthControlledWinRate(
      comparisons.map((c, index) => {
        const [policyResponse, initResponse] = c.responses as string[];
        const outcome = outcomes[Math.floor(index / samplesPerPrompt)][index % samplesPerPrompt];
        return { outcome, lengthDelta: policyResponse.length - initResponse.length };
      }),
    );
    const reward = config.evaluator === JudgeMethod.JUDGE_METHOD_RULE ? 'gold_reward' : 'reward';
    const metrics: Record<string, number> = {
      'eval/win_rate': rate.winRate,
      'eval/win_rate_ci_low': rate.ciLow,
      'eval/win_rate_ci_high': rate.ciHigh,
      'eval/lc_win_rate': lengthControlled,
      'eval/wins': rate.wins,
      'eval/ties': rate.ties,
      'eval/losses': rate.losses,
      'eval/comparisons': rate.comparisons,
      'eval/mean_length': mean(samples.lines.flatMap((l) => (l.responses as string[]).map((r) => r.length))),
      'eval/init_mean_length': mean(baseline.map((l) => (l.responses as string[])[0].length)),
      'eval/dropped_identical': judged.counts.droppedIdentical,
      'eval/dropped_ties': judged.counts.droppedTies,
      'eval/dropped_invalid': judged.counts.droppedInvalid,
    };
    if (policyScores.length > 0) metrics[`eval/${reward}`] = mean(policyScores);
    if (initScores.length > 0) metrics[`eval/init_${reward}`] = mean(initScores);

    if (request.selfLabelledPairs && config.evaluator === JudgeMethod.JUDGE_METHOD_RULE) {
      const accuracy = await this.selfLabelAccuracy(request, request.selfLabelledPairs, workDir, outputs, ctx);
      Object.assign(metrics, accuracy.metrics);
      if (accuracy.metrics['judge/self_label_accuracy'] < 0.5) {
        warnings.push(
          `self-label accuracy ${accuracy.metrics['judge/self_label_accuracy'].toFixed(3)} is below chance: ` +
            `round ${request.round}'s judge labelled against the gold rule more often than with it`,
        );
      }
    }
    return { outputs, metrics, warnings };
  }

  /**
   * How often the round's self-labels (chosen over rejected) agree with the RULE evaluator on the same two responses.
   * Pairs the gold annotator labelled (spec.round_gold_labels, `"source": "gold"`) are not self-labels and are left
   * out; a round that trained on gold pairs alone has no self-label accuracy (the metric is absent).
   */
  private async selfLabelAccuracy(
    request: EvaluateRequest,
    pairsRef: ArtifactRef,
    workDir: string,
    outputs: Record<string, ArtifactRef>,
    ctx: CallContext,
  ): Promise<{ metrics: Record<string, number> }> {
    const trained = (await readObjects(await readPinned(pairsRef, 'self-labelled pairs'))).map((l) => l.value);
    const pairs = trained.filter((p) => p.source !== 'gold');
    if (pairs.length === 0) return { metrics: {} };
    const items = pairs.map((p, j) => ({ prompt_index: j, prompt: p.prompt, responses: [p.chosen, p.rejected] }));
    const itemsInfo = await writeJsonl(path.join(request.dir, 'self_labels.jsonl'), items);
    outputs.self_labels = { uri: itemsInfo.uri, sha256: itemsInfo.sha256, sizeBytes: itemsInfo.sizeBytes };
    const judged = await judgeSharded(
      {
        executor: this.evaluatorJudge(request.config),
        request: { ...evaluatorRequest(request), responses: outputs.self_labels },
        items,
        shards: request.judgeShards,
        workDir,
        name: 'self_label_judgements',
        destination: path.join(request.dir, 'self_label_judgements.jsonl'),
      },
      { ...ctx, label: `${ctx.label} (self-label accuracy)` },
    );
    outputs.self_label_judgements = judged.pairs;
    let agree = 0;
    let decided = 0;
    for (const gold of judged.lines) {
      if (gold.chosen === gold.rejected || gold.margin === 0) continue;
      decided += 1;
      if (gold.chosen === (items[gold.prompt_index as number].responses[0] as string)) agree += 1;
    }
    return {
      metrics: {
        'judge/self_label_accuracy': decided > 0 ? agree / decided : NaN,
        'judge/self_label_gold_ties': items.length - decided,
      },
    };
  }
}

/** The JudgePairs method and options of the evaluator (ties are not dropped by tolerance: they count half). */
function evaluatorRequest(request: EvaluateRequest): Omit<JudgePairsRequest, 'responses' | 'shard' | 'outputUri'> {
  const config = request.config;
  if (config.evaluator === JudgeMethod.JUDGE_METHOD_RULE) {
    return { method: config.evaluator, rule: { rule: config.rule, tieTolerance: 0 } };
  }
  if (config.evaluator === JudgeMethod.JUDGE_METHOD_REWARD_MODEL) {
    return { method: config.evaluator, rewardModel: { rewardModel: config.rewardModel, tieTolerance: 0 } };
  }
  throw new StageFailedError(`evaluator ${JudgeMethod[config.evaluator]} is not supported (RULE or REWARD_MODEL)`);
}
