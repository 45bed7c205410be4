import * as fs from 'node:fs';
import * as path from 'node:path';
import { toLocalPath } from '@alignment/artifacts';
import {
  Configuration,
  JobState,
  JudgeMethod,
  PromptEncoding,
  RunSpec,
  Stage,
  TrainingHyperparams,
  UnfinishedPairs,
  type ArtifactRef,
  type GenerateResult,
  type JudgePairsResult,
  type ModelRef,
  type Run,
} from '@alignment/contracts';
import type { World } from '@alignment/toyworld';
import { CONFIGURATIONS, configurationPlan } from '../../services/coordinator/src/run/configurations';
import { klEstimate, leanings, meanWithCi } from './metrics';
import type { RoundEvaluation } from './results';
import type { StackClients } from './stack';
import type { WorldInputs } from './world-model';

/**
 * `gold-rounds`: wdro whose rounds train on gold labels alone. Each round the world's gold annotator labels the
 * policy's pairs on `goldRounds.pairsPerRound` of the round's prompts (RunSpec.round_gold_labels, the self-labels
 * discarded), and the round trains on them as round 0 trains on the seed (the seed's epochs and batch size). It is
 * online DPO on a small gold budget, not self-annotation: the configuration that meets issue 11's bars
 * (experiments/gold-noise-15k-findings.md, experiments/gold-demo-1k5-findings.md).
 */
export const GOLD_ROUNDS = 'gold-rounds';

/** The configuration the demo's results.json marks `"recommended": true` (★ in its table). */
export const RECOMMENDED_CONFIGURATION = GOLD_ROUNDS;

/**
 * Configurations the demo can run, by report name: the coordinator's (services/coordinator/src/run/configurations.ts,
 * dpo-gold included) less the iterative-DPO baselines, whose judge model the toy worlds do not have, plus gold-rounds.
 */
const NEEDS_JUDGE_MODEL: ReadonlySet<Configuration> = new Set([Configuration.CONFIGURATION_ITER_DPO_RM, Configuration.CONFIGURATION_ITER_DPO_JUDGE]);
export const DEMO_CONFIGURATIONS: ReadonlyMap<string, Configuration> = new Map([
  ...[...CONFIGURATIONS].filter(([configuration]) => !NEEDS_JUDGE_MODEL.has(configuration)).map(([configuration, plan]) => [plan.name, configuration] as const),
  [GOLD_ROUNDS, Configuration.CONFIGURATION_WDRO],
]);

/** Configurations whose preference loss is the W-DRO objective (its radius and support margin go in the RunSpec). */
const WDRO_LOSS: ReadonlySet<Configuration> = new Set([Configuration.CONFIGURATION_WDRO, Configuration.CONFIGURATION_WDRO_SR]);

/**
 * How the demo encodes its string prompts: the toy worlds' base models learn their SFT data through the chat template
 * (world-model.ts), and every published figure was produced that way, so the demo asks for it explicitly rather than
 * RunSpec.prompt_encoding's raw-text default.
 */
export const DEMO_PROMPT_ENCODING = PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE;

/** Configurations that train round 0 only (no self-annotation rounds, so no round prompt sets). */
const seedOnly = (config: string) => !configurationPlan(DEMO_CONFIGURATIONS.get(config)!).selfAnnotation;

type EventHandler = (done: number, total: number, detail: string) => void;

function ref(uri: string): ArtifactRef {
  return { uri, sha256: '', sizeBytes: 0 };
}

function streamResult<T>(stream: NodeJS.EventEmitter, onProgress: EventHandler | undefined, unit: string): Promise<T> {
  return new Promise((resolve, reject) => {
    let result: T | undefined;
    stream.on('data', (message: { event?: { $case: string; value: unknown } }) => {
      if (message.event?.$case === 'progress') {
        const p = message.event.value as { done: number; total: number };
        onProgress?.(p.done, p.total, unit);
      } else if (message.event?.$case === 'result') {
        result = message.event.value as T;
      }
    });
    stream.on('error', reject);
    stream.on('end', () => (result === undefined ? reject(new Error('the stream ended without a result')) : resolve(result)));
  });
}

export interface GoldPairs {
  file: string;
  pairs: number;
  /** Prompts whose two samples were identical or tied on gold (dropped by the judge). */
  dropped: number;
  prompts: number;
}

/**
 * On-policy gold pairs (docs/benchmark.md: off-policy pairs taught almost nothing): two samples of π_init per prompt,
 * labelled by the world's gold annotator through the judge's `rule` method; identical or tied pairs are dropped, pairs
 * with a response cut at max_new_tokens are kept (UNFINISHED_PAIRS_KEEP; docs/algorithm.md §7).
 */
export async function goldPairs(
  clients: StackClients,
  world: World,
  model: ModelRef,
  promptFiles: string[],
  outDir: string,
  options: { seed: number; maxNewTokens: number; temperature: number },
  onProgress?: EventHandler,
): Promise<GoldPairs> {
  fs.mkdirSync(outDir, { recursive: true });
  const prompts = path.join(outDir, 'prompts.jsonl');
  fs.writeFileSync(prompts, promptFiles.map((f) => fs.readFileSync(f, 'utf8')).join(''));
  const generated = await streamResult<GenerateResult>(
    clients.generator.generate({
      model,
      prompts: { $case: 'promptSet', value: ref(prompts) },
      params: { n: 2, temperature: options.temperature, topK: 0, maxNewTokens: options.maxNewTokens, stop: [], seed: options.seed, greedy: false },
      outputUri: path.join(outDir, 'responses.jsonl'),
      // The toy worlds' models are trained on prompts in their chat template (world-model.ts), as every run samples.
      promptEncoding: DEMO_PROMPT_ENCODING,
    }),
    onProgress,
    'prompts',
  );
  const judged = await streamResult<JudgePairsResult>(
    clients.judge.judgePairs({
      method: JudgeMethod.JUDGE_METHOD_RULE,
      responses: generated.responses!,
      rule: { rule: world.rule, tieTolerance: 0 },
      // The gold annotator stands in for the human labels, which judge every pair, cut responses included (the rule
      // scores them on their text); the pairs carry the finished flags, so the trainer learns a cut one without EOS.
      unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP,
      outputUri: path.join(outDir, 'pairs.jsonl'),
    }),
    undefined,
    'pairs',
  );
  const counts = judged.counts!;
  return {
    file: path.join(outDir, 'pairs.jsonl'),
    pairs: counts.numPairs,
    dropped: counts.droppedIdentical + counts.droppedTies + counts.droppedInvalid,
    prompts: counts.numPrompts,
  };
}

export interface RunSettings {
  rounds: number;
  seed: number;
  beta: number;
  samplesPerPrompt: number;
  generation: { temperature: number; maxNewTokens: number };
  seedTraining: Partial<TrainingHyperparams>;
  roundTraining: Partial<TrainingHyperparams>;
  wdro: { rho: number; delta: number };
  dndLambdaSchedule: number[];
  /** gold-rounds: the annotator (the stack's judge, which knows the worlds' rules), its prompts a round, the rounds' rate. */
  goldRounds: { annotatorAddress: string; pairsPerRound: number; learningRate: number };
}

/** gold-rounds' RunSpec fields: its gold annotator, and rounds trained as round 0 trains the seed. */
function goldRoundFields(world: World, settings: RunSettings): Pick<RunSpec, 'roundGoldLabels' | 'roundTraining'> {
  const g = settings.goldRounds;
  return {
    roundGoldLabels: { annotatorAddress: g.annotatorAddress, rule: world.rule, pairsPerRound: g.pairsPerRound, discardSelfLabels: true },
    roundTraining: TrainingHyperparams.fromPartial({
      ...settings.roundTraining,
      epochs: settings.seedTraining.epochs,
      batchSize: settings.seedTraining.batchSize,
      learningRate: g.learningRate,
    }),
  };
}

/** The RunSpec of one configuration on a world's inputs. */
export function runSpec(config: string, world: World, inputs: WorldInputs, seedPairs: string, settings: RunSettings): RunSpec {
  const configuration = DEMO_CONFIGURATIONS.get(config);
  if (configuration === undefined) throw new Error(`unknown configuration '${config}'`);
  const spec = RunSpec.fromPartial({
    name: `demo: ${config} on the ${world.name} world, seed ${settings.seed}`,
    configuration,
    baseModel: inputs.model,
    seedPairs: ref(seedPairs),
    prompts: seedOnly(config) ? undefined : { $case: 'roundPrompts', value: { rounds: inputs.roundPrompts.slice(0, settings.rounds).map(ref) } },
    rounds: settings.rounds,
    generation: { n: 2, temperature: settings.generation.temperature, maxNewTokens: settings.generation.maxNewTokens },
    loss: {
      beta: settings.beta,
      dndLambdaSchedule: config === 'spa' || config === 'wdro-sr' ? settings.dndLambdaSchedule.slice(0, settings.rounds) : [],
      wdro: WDRO_LOSS.has(configuration) ? { radius: { $case: 'rho', value: settings.wdro.rho }, delta: settings.wdro.delta } : undefined,
    },
    // Training seeds are derived per round from spec.seed by the coordinator.
    seedTraining: settings.seedTraining,
    roundTraining: settings.roundTraining,
    evaluation: {
      prompts: ref(inputs.evalPrompts),
      evaluator: JudgeMethod.JUDGE_METHOD_RULE,
      rule: world.rule,
      samplesPerPrompt: settings.samplesPerPrompt,
      generation: { temperature: settings.generation.temperature, maxNewTokens: settings.generation.maxNewTokens },
    },
    seed: settings.seed,
    promptEncoding: DEMO_PROMPT_ENCODING,
  });
  return config === GOLD_ROUNDS ? { ...spec, ...goldRoundFields(world, settings) } : spec;
}

/** StartRun, then WatchRun until the run ends; reports stage progress. Rejects when the run does not succeed. */
export async function runToCompletion(
  clients: StackClients,
  runId: string,
  spec: RunSpec,
  onEvent: (stage: string, done: number, total: number) => void,
): Promise<Run> {
  await new Promise<void>((resolve, reject) => clients.coordinator.startRun({ spec, runId }, (e) => (e ? reject(e) : resolve())));
  let stage = 'starting';
  const final = await new Promise<Run | undefined>((resolve, reject) => {
    let run: Run | undefined;
    const stream = clients.coordinator.watchRun({ runId }, { deadline: Date.now() + 6 * 3600_000 });
    stream.on('data', (message: { event?: { $case: string; value: unknown } }) => {
      const event = message.event;
      if (event?.$case === 'stage') {
        const s = event.value as { round: number; stage: Stage; state: JobState };
        stage = `r${s.round} ${Stage[s.stage].replace('STAGE_', '').toLowerCase()}`;
        onEvent(stage, 0, 0);
      } else if (event?.$case === 'progress') {
        const p = event.value as { done: number; total: number };
        onEvent(stage, p.done, p.total);
      } else if (event?.$case === 'run') {
        run = event.value as Run;
      }
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(run));
  });
  const run = final ?? (await new Promise<Run>((resolve, reject) => clients.coordinator.getRun({ runId }, (e, r) => (e ? reject(e) : resolve(r.run!)))));
  if (run.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`run ${runId} ended ${JobState[run.state]}: ${run.error}`);
  return run;
}

interface StageManifest {
  outputs: Record<string, { uri: string }>;
}

/** The objects of a JSON-lines file (blank lines skipped). */
export function readJsonl(file: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function scoreLogps(clients: StackClients, model: ModelRef, items: Array<{ prompt: string; response: string }>): Promise<number[]> {
  const response = await new Promise<{ scores: Array<{ logp: number }> }>((resolve, reject) =>
    clients.judge.scoreSequences({ model, items, perToken: false, promptEncoding: DEMO_PROMPT_ENCODING }, (e, r) => (e ? reject(e) : resolve(r))),
  );
  return response.scores.map((s) => s.logp);
}

/**
 * The demo's figures for every evaluated round of a finished run, from the coordinator's metrics (win rate and its
 * interval, length-controlled win rate, self-label accuracy) and the stage outputs it keeps under
 * $DATA_DIR/runs/<run>/round-<t>/<stage>/ (stage.json names them): gold reward with an interval from the samples,
 * KL(π‖π_init) by scoring the samples under both models, and the round judge's leanings on the world's features.
 */
export async function evaluateRun(clients: StackClients, world: World, dataDir: string, run: Run, baseModel: ModelRef): Promise<RoundEvaluation[]> {
  const stageDir = (round: number, stage: string) => path.join(dataDir, 'runs', run.runId, `round-${round}`, stage);
  const manifest = (round: number, stage: string): StageManifest =>
    JSON.parse(fs.readFileSync(path.join(stageDir(round, stage), 'stage.json'), 'utf8')) as StageManifest;
  const metricsOf = (round: number) => run.rounds.find((r) => r.round === round)?.metrics ?? {};
  const baselineOutputs = manifest(0, 'evaluate').outputs;
  const baseline = readJsonl(toLocalPath(baselineOutputs.baseline.uri)).map((l) => (l.responses as string[])[0]);
  const evaluations: RoundEvaluation[] = [];
  for (let round = 0; fs.existsSync(path.join(stageDir(round, 'evaluate'), 'stage.json')); round++) {
    const outputs = manifest(round, 'evaluate').outputs;
    const samples = readJsonl(toLocalPath(outputs.samples.uri));
    const items = samples.flatMap((s) => (s.responses as string[]).map((response) => ({ prompt: s.prompt as string, response })));
    const gold = meanWithCi(items.map((it) => world.gold(it.prompt, it.response) ?? 0));
    const initGold = meanWithCi(samples.map((s, i) => world.gold(s.prompt as string, baseline[i]) ?? 0));
    const learned = manifest(round, 'learn').outputs;
    const policy: ModelRef = { hfCheckpoint: ref(toLocalPath(learned['model.hf_checkpoint'].uri)), onnx: ref(toLocalPath(learned['model.onnx'].uri)) };
    const kl = klEstimate(await scoreLogps(clients, policy, items), await scoreLogps(clients, baseModel, items));
    const metrics = metricsOf(round);
    let lean: Record<string, number> = {};
    let dropped: number | null = null;
    const judgeManifest = path.join(stageDir(round, 'judge'), 'stage.json');
    if (round > 0 && fs.existsSync(judgeManifest)) {
      const pairs = readJsonl(toLocalPath(manifest(round, 'judge').outputs.pairs.uri));
      lean = leanings(
        pairs.map((p) => ({
          chosen: world.features(p.prompt as string, p.chosen as string),
          rejected: world.features(p.prompt as string, p.rejected as string),
        })),
      );
      dropped = (metrics['judge/dropped_ties'] ?? 0) + (metrics['judge/dropped_identical'] ?? 0) + (metrics['judge/dropped_unfinished'] ?? 0);
    }
    const accuracy = metrics['judge/self_label_accuracy'];
    evaluations.push({
      round,
      win_rate: metrics['eval/win_rate'],
      win_rate_ci: [metrics['eval/win_rate_ci_low'], metrics['eval/win_rate_ci_high']],
      lc_win_rate: metrics['eval/lc_win_rate'],
      gold_reward: gold.mean,
      gold_reward_ci: gold.ci,
      init_gold_reward: initGold.mean,
      init_gold_reward_ci: initGold.ci,
      mean_length: metrics['eval/mean_length'],
      init_mean_length: metrics['eval/init_mean_length'],
      kl,
      self_label_accuracy: typeof accuracy === 'number' && Number.isFinite(accuracy) ? accuracy : null,
      dropped_pairs: dropped,
      leanings: lean,
    });
  }
  return evaluations;
}
