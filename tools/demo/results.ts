/**
 * What the demo measures, as written to results.json (one record per configuration) and rendered by report.ts.
 * Figures are on the held-out evaluation prompts of the world, against π_init (the SFT model), judged by the
 * world's gold annotator.
 */

/** One evaluation of one policy (one configuration, one seed, one round). */
export interface RoundEvaluation {
  round: number;
  /** Gold win rate vs π_init's fixed sample, ties half. */
  win_rate: number;
  /** 95% bootstrap interval over prompts. */
  win_rate_ci: [number, number];
  /** Length-controlled win rate (Dubois et al. 2024 logistic adjustment), see metrics.ts. */
  lc_win_rate: number;
  /** Mean gold score of the policy's samples, with a 95% interval (normal approximation over samples). */
  gold_reward: number;
  gold_reward_ci: [number, number];
  /** Mean gold score of π_init's sample (the same in every round). */
  init_gold_reward: number;
  init_gold_reward_ci: [number, number];
  /** Mean response length in characters. */
  mean_length: number;
  /** Mean length of π_init's sample (characters; the same in every round). */
  init_mean_length: number;
  /** KL(π‖π_init) estimated from the policy's samples: mean of log π(y|x) − log π_init(y|x), nats per response. */
  kl: number;
  /** Rounds ≥ 1 of self-annotating configurations: how often the round's self-labels agree with gold; else null. */
  self_label_accuracy: number | null;
  /** Pairs the round's judge dropped (ties, identical, with a response cut at max_new_tokens), when the round judged any. */
  dropped_pairs: number | null;
  /** The judge's systematic leanings in this round: for each world feature, P(chosen has the larger value | differ). */
  leanings: Record<string, number>;
}

/** One configuration run with one seed. */
export interface SeedResult {
  seed: number;
  run_id: string;
  rounds: RoundEvaluation[];
  seconds: number;
}

/** The results.json record of one configuration: the final round's figures, averaged over seeds. */
export interface ConfigResult {
  config: string;
  world: string;
  /** The configuration the project recommends (tools/demo/runs.ts RECOMMENDED_CONFIGURATION): ★ in the tables. */
  recommended: boolean;
  /** Final-round figures: means over seeds (a single seed's value when there is one). */
  win_rate: number;
  win_rate_ci: [number, number];
  lc_win_rate: number;
  gold_reward: number;
  gold_reward_ci: [number, number];
  mean_length: number;
  kl: number;
  self_label_accuracy: number | null;
  /** Standard deviation over seeds of the final win rate (0 with one seed). */
  win_rate_spread: number;
  seeds: SeedResult[];
}

export interface DemoResults {
  world: string;
  /** Gold annotator description. */
  gold: string;
  created_at: string;
  options: Record<string, unknown>;
  /** π_init's own figures on the evaluation prompts (the SFT row of the table). */
  sft: { gold_reward: number; mean_length: number };
  configs: ConfigResult[];
  /**
   * The on-policy seed sets: per run seed, prompts, pairs kept, and prompts dropped because π_init's two samples
   * were identical or tied on gold (docs/benchmark.md: SFT samples must differ often and tie rarely, < 20%).
   */
  seed_pairs?: Array<{ seed: number; prompts: number; pairs: number; dropped: number }>;
  /** Wall-clock seconds of the phases (stack start, base model, seed pairs, runs, report). */
  timings: Record<string, number>;
  warnings: string[];
}
