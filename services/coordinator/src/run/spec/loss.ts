import { AdversarySchedule, type Configuration, type LossParams, type WdroBudget } from '@alignment/contracts';
import type { ConfigurationPlan } from '../configurations';
import { check, configName, finite } from './fields';

/** spec.loss: each parameter only where the configuration uses it (configurations.ts), each in its range. */
export function checkLoss(loss: LossParams | undefined, plan: ConfigurationPlan, configuration: Configuration, rounds: number): void {
  const name = configName(configuration);
  if (!loss) {
    checkWdro(undefined, plan, name);
    return;
  }
  if (loss.beta !== undefined) {
    finite(loss.beta, 'loss.beta');
    check(loss.beta > 0, 'loss.beta', `must be > 0, got ${loss.beta}`);
  }
  const usesSpa = plan.dnd !== 'none';
  if (loss.spa) {
    check(usesSpa, 'loss.spa', `is only used by the configurations with self-refinement (spa, spa-no-dnd, wdro-sr), not ${name}`);
    const s = loss.spa;
    if (s.alpha !== undefined) {
      finite(s.alpha, 'loss.spa.alpha');
      check(s.alpha >= 0 && s.alpha <= 1, 'loss.spa.alpha', `must be in [0, 1], got ${s.alpha}`);
    }
    if (s.kPercentile !== undefined) {
      finite(s.kPercentile, 'loss.spa.k_percentile');
      check(s.kPercentile > 0 && s.kPercentile < 100, 'loss.spa.k_percentile', `must be in (0, 100), got ${s.kPercentile}`);
    }
    if (s.warmupFraction !== undefined) {
      finite(s.warmupFraction, 'loss.spa.warmup_fraction');
      check(s.warmupFraction >= 0 && s.warmupFraction < 1, 'loss.spa.warmup_fraction', `must be in [0, 1), got ${s.warmupFraction}`);
    }
    check(s.window <= 100_000, 'loss.spa.window', `must be 0 (default 50) or at most 100000, got ${s.window}`);
    check(s.dndLambda === 0, 'loss.spa.dnd_lambda', 'must be 0: λ is set per round by loss.dnd_lambda_schedule');
  }
  if (loss.dndLambdaSchedule.length > 0) {
    check(
      plan.dnd === 'schedule',
      'loss.dnd_lambda_schedule',
      `is only used by the configurations with de-coupled noise detection (spa, wdro-sr), not ${name}` +
        (plan.dnd === 'off' ? ' (it runs with λ = 0)' : ''),
    );
    loss.dndLambdaSchedule.forEach((lambda, i) => {
      finite(lambda, `loss.dnd_lambda_schedule[${i}]`);
      check(lambda >= 0, `loss.dnd_lambda_schedule[${i}]`, `must be >= 0, got ${lambda}`);
    });
    check(
      loss.dndLambdaSchedule.length <= rounds,
      'loss.dnd_lambda_schedule',
      `has ${loss.dndLambdaSchedule.length} values for ${rounds} rounds`,
    );
  }
  checkWdro(loss.wdro, plan, name);
  checkAdversarySchedule(loss, plan, name);
  if (loss.labelSmoothing !== undefined) {
    check(plan.labelSmoothing, 'loss.label_smoothing', `is only used by cdpo and rdpo, not ${name}`);
    finite(loss.labelSmoothing, 'loss.label_smoothing');
    check(loss.labelSmoothing >= 0 && loss.labelSmoothing < 0.5, 'loss.label_smoothing', `must be in [0, 0.5), got ${loss.labelSmoothing}`);
  }
  if (loss.drdpoBetaPrime !== undefined) {
    check(plan.drdpoBetaPrime, 'loss.drdpo_beta_prime', `is only used by drdpo, not ${name}`);
    finite(loss.drdpoBetaPrime, 'loss.drdpo_beta_prime');
    check(loss.drdpoBetaPrime > 0, 'loss.drdpo_beta_prime', `must be > 0, got ${loss.drdpoBetaPrime}`);
  }
}

/**
 * The W-DRO rule, in one place: the configurations with a W-DRO round loss (plan.wdro: wdro, wdro-sr) need
 * loss.wdro with δ and a budget, and no other configuration takes one (docs/algorithm.md, the W-DRO adversary).
 */
function checkWdro(wdro: WdroBudget | undefined, plan: ConfigurationPlan, name: string): void {
  if (!plan.wdro) {
    check(wdro === undefined, 'loss.wdro', `is only used by wdro and wdro-sr, not ${name}`);
    return;
  }
  check(wdro !== undefined, 'loss.wdro', `is required for ${name} (delta and epsilon or rho)`);
  const w = wdro!;
  finite(w.delta, 'loss.wdro.delta');
  check(w.delta > 0 && w.delta < 0.5, 'loss.wdro.delta', `must be in (0, 0.5), got ${w.delta} (δ = 0 makes the worst case infinite)`);
  check(w.radius !== undefined, 'loss.wdro.radius', 'one of epsilon or rho is required');
  if (w.radius!.$case === 'epsilon') {
    finite(w.radius!.value, 'loss.wdro.epsilon');
    check(w.radius!.value >= 0, 'loss.wdro.epsilon', `must be >= 0, got ${w.radius!.value}`);
  } else {
    checkRho(w.radius!.value, 'loss.wdro.rho');
  }
}

/**
 * When the adversary is solved (docs/algorithm.md §7, per-round adversary): only for the W-DRO configurations, and
 * a group size only with the per-round schedule, of at least 2 pairs (one pair alone has nothing to re-weight).
 */
function checkAdversarySchedule(loss: LossParams, plan: ConfigurationPlan, name: string): void {
  if (loss.adversarySchedule !== undefined) {
    check(plan.wdro, 'loss.adversary_schedule', `is only used by wdro and wdro-sr, not ${name}`);
    const known = [AdversarySchedule.ADVERSARY_SCHEDULE_UNSPECIFIED, AdversarySchedule.ADVERSARY_SCHEDULE_PER_STEP, AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND];
    check(known.includes(loss.adversarySchedule), 'loss.adversary_schedule', `must be ADVERSARY_SCHEDULE_PER_STEP (the default) or ADVERSARY_SCHEDULE_PER_ROUND, got ${loss.adversarySchedule}`);
  }
  if (loss.adversaryGroupSize !== undefined) {
    check(
      loss.adversarySchedule === AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND,
      'loss.adversary_group_size',
      'is only used with adversary_schedule ADVERSARY_SCHEDULE_PER_ROUND',
    );
    check(loss.adversaryGroupSize >= 2, 'loss.adversary_group_size', `must be >= 2, got ${loss.adversaryGroupSize}`);
  }
}

/** ρ, the budget as a fraction of the most the adversary could move: in [0, 1). */
function checkRho(rho: number, p: string): void {
  finite(rho, p);
  check(rho >= 0 && rho < 1, p, `must be in [0, 1), got ${rho}`);
}
