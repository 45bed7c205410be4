import { Configuration, JudgeMethod, PreferenceLoss } from '@alignment/contracts';

/**
 * What a configuration of docs/algorithm.md §6 means for the rounds: the one place where a configuration name turns
 * into a judge method and the trainer's PreferenceLoss. Everything else (validation, job specs, the README) reads
 * this table.
 *
 * | configuration    | rounds ≥ 1 | judge (rounds ≥ 1) | round 0 loss | round t ≥ 1 loss | λ_t (DND)             | W-DRO budget |
 * |------------------|-----------|--------------------|--------------|------------------|-----------------------|--------------|
 * | dpo-seed         | none      | –                  | DPO          | –                | –                     | –            |
 * | dpo-gold         | none      | –                  | DPO          | –                | –                     | –            |
 * | spa              | yes       | SPA_IMPLICIT       | DPO          | SPA              | schedule (1/2,1/4,1/8) | –            |
 * | spa-no-dnd       | yes       | SPA_IMPLICIT       | DPO          | SPA              | 0 (DND off)           | –            |
 * | spa-no-sr        | yes       | SPA_IMPLICIT       | DPO          | DPO              | –                     | –            |
 * | wdro             | yes       | SPA_IMPLICIT       | DPO          | WDRO             | –                     | required     |
 * | wdro-sr          | yes       | SPA_IMPLICIT       | DPO          | WDRO_SR          | schedule              | required     |
 * | iter-dpo-rm      | yes       | REWARD_MODEL       | DPO          | DPO              | –                     | –            |
 * | iter-dpo-judge   | yes       | LLM_AS_JUDGE       | DPO          | DPO              | –                     | –            |
 * | cdpo             | none      | –                  | CDPO         | –                | –                     | –            |
 * | rdpo             | none      | –                  | RDPO         | –                | –                     | –            |
 * | drdpo            | none      | –                  | DRDPO        | –                | –                     | –            |
 *
 * Round 0 is SPA Algorithm 1's π_0 = DPO(π_init, D_0) for every self-annotating configuration, so configurations
 * that share a seed set (and a label-noise rate) share π_0 and differ only in what the rounds do. The seed-only
 * configurations (dpo-seed and the robust-DPO baselines of the noise table) train round 0 only: `spec.rounds` and
 * the prompt sets are not used by them. dpo-gold trains exactly as dpo-seed does; its seed_pairs are the gold-labelled
 * pairs of the whole prompt budget (seed and round prompts: what the self-annotating configurations label themselves),
 * and the name says so in the run's record, traces and reports (docs/benchmark.md §2).
 */
export interface ConfigurationPlan {
  /** The name used in reports (docs/algorithm.md §6). */
  name: string;
  /** Whether rounds 1..T (expand, judge, learn) run at all. */
  selfAnnotation: boolean;
  /** Judge method of the rounds; the spec's judge_method must be this one (or unspecified). */
  judge?: JudgeMethod;
  seedLoss: PreferenceLoss;
  roundLoss?: PreferenceLoss;
  /**
   * De-coupled noise detection in the rounds: `schedule` sends λ_t of spec.loss.dnd_lambda_schedule, `off` sends
   * the SPA parameters with λ = 0, `none` sends no SPA parameters (the loss has no self-refinement).
   */
  dnd: 'schedule' | 'off' | 'none';
  /** spec.loss.wdro is required (and only allowed) for these. */
  wdro: boolean;
  /** spec.loss.label_smoothing is only allowed for these (the trainer's CDPO and RDPO losses). */
  labelSmoothing: boolean;
  /** spec.loss.drdpo_beta_prime is only allowed for Dr. DPO. */
  drdpoBetaPrime: boolean;
}

const SEED_ONLY = { selfAnnotation: false, dnd: 'none', wdro: false, labelSmoothing: false, drdpoBetaPrime: false } as const;
const ROUNDS = { selfAnnotation: true, seedLoss: PreferenceLoss.PREFERENCE_LOSS_DPO, labelSmoothing: false, drdpoBetaPrime: false } as const;

export const CONFIGURATIONS: ReadonlyMap<Configuration, ConfigurationPlan> = new Map<Configuration, ConfigurationPlan>([
  [Configuration.CONFIGURATION_DPO_SEED, { ...SEED_ONLY, name: 'dpo-seed', seedLoss: PreferenceLoss.PREFERENCE_LOSS_DPO }],
  [Configuration.CONFIGURATION_DPO_GOLD, { ...SEED_ONLY, name: 'dpo-gold', seedLoss: PreferenceLoss.PREFERENCE_LOSS_DPO }],
  [
    Configuration.CONFIGURATION_SPA,
    { ...ROUNDS, name: 'spa', judge: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, roundLoss: PreferenceLoss.PREFERENCE_LOSS_SPA, dnd: 'schedule', wdro: false },
  ],
  [
    Configuration.CONFIGURATION_SPA_NO_DND,
    { ...ROUNDS, name: 'spa-no-dnd', judge: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, roundLoss: PreferenceLoss.PREFERENCE_LOSS_SPA, dnd: 'off', wdro: false },
  ],
  [
    Configuration.CONFIGURATION_SPA_NO_SR,
    { ...ROUNDS, name: 'spa-no-sr', judge: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, roundLoss: PreferenceLoss.PREFERENCE_LOSS_DPO, dnd: 'none', wdro: false },
  ],
  [
    Configuration.CONFIGURATION_WDRO,
    { ...ROUNDS, name: 'wdro', judge: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, roundLoss: PreferenceLoss.PREFERENCE_LOSS_WDRO, dnd: 'none', wdro: true },
  ],
  [
    Configuration.CONFIGURATION_WDRO_SR,
    { ...ROUNDS, name: 'wdro-sr', judge: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, roundLoss: PreferenceLoss.PREFERENCE_LOSS_WDRO_SR, dnd: 'schedule', wdro: true },
  ],
  [
    Configuration.CONFIGURATION_ITER_DPO_RM,
    { ...ROUNDS, name: 'iter-dpo-rm', judge: JudgeMethod.JUDGE_METHOD_REWARD_MODEL, roundLoss: PreferenceLoss.PREFERENCE_LOSS_DPO, dnd: 'none', wdro: false },
  ],
  [
    Configuration.CONFIGURATION_ITER_DPO_JUDGE,
    { ...ROUNDS, name: 'iter-dpo-judge', judge: JudgeMethod.JUDGE_METHOD_LLM_AS_JUDGE, roundLoss: PreferenceLoss.PREFERENCE_LOSS_DPO, dnd: 'none', wdro: false },
  ],
  [Configuration.CONFIGURATION_CDPO, { ...SEED_ONLY, name: 'cdpo', seedLoss: PreferenceLoss.PREFERENCE_LOSS_CDPO, labelSmoothing: true }],
  [Configuration.CONFIGURATION_RDPO, { ...SEED_ONLY, name: 'rdpo', seedLoss: PreferenceLoss.PREFERENCE_LOSS_RDPO, labelSmoothing: true }],
  [Configuration.CONFIGURATION_DRDPO, { ...SEED_ONLY, name: 'drdpo', seedLoss: PreferenceLoss.PREFERENCE_LOSS_DRDPO, drdpoBetaPrime: true }],
]);

/** λ_t of the paper (SPA §4): 1/2, 1/4, 1/8 for rounds 1, 2, 3. Used when spec.loss.dnd_lambda_schedule is empty. */
export const PAPER_DND_LAMBDA_SCHEDULE: readonly number[] = [0.5, 0.25, 0.125];

/** Prompt fractions of rounds 1, 2, 3 in the paper's split (SPA §4: 13.3%, 33.3%, 50% after a 3.3% seed). */
export const PAPER_ROUND_FRACTIONS: readonly number[] = [0.133, 0.333, 0.5];

/** The configuration a report name (a ConfigurationPlan name: dpo-seed, spa, …, dpo-gold) stands for. */
export function configurationByName(name: string): Configuration | undefined {
  for (const [configuration, plan] of CONFIGURATIONS) if (plan.name === name) return configuration;
  return undefined;
}

export function configurationPlan(configuration: Configuration): ConfigurationPlan {
  const plan = CONFIGURATIONS.get(configuration);
  if (!plan) throw new Error(`no plan for configuration ${Configuration[configuration] ?? configuration}`);
  return plan;
}

/** Rounds after round 0 that actually run: spec.rounds for self-annotating configurations, 0 for seed-only ones. */
export function effectiveRounds(configuration: Configuration, rounds: number): number {
  return configurationPlan(configuration).selfAnnotation ? rounds : 0;
}

/**
 * λ_t for round t ≥ 1: the t-th entry of the schedule (the paper's when empty); rounds past the end of the schedule
 * keep its last value.
 */
export function dndLambda(schedule: readonly number[], round: number): number {
  const values = schedule.length > 0 ? schedule : PAPER_DND_LAMBDA_SCHEDULE;
  return values[Math.min(round, values.length) - 1];
}

/** The judge method the rounds of a spec use: the spec's, else the configuration's. */
export function roundJudgeMethod(configuration: Configuration, specMethod: JudgeMethod): JudgeMethod {
  if (specMethod !== JudgeMethod.JUDGE_METHOD_UNSPECIFIED) return specMethod;
  return configurationPlan(configuration).judge ?? JudgeMethod.JUDGE_METHOD_UNSPECIFIED;
}
