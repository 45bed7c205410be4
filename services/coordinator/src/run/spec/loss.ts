import { AdversarySchedule, type Configuration, type LossParams, type WdroBudget } from '@alignment/contracts';
import type { ConfigurationPlan } from '../configurations';
import { check, configName } from './fields';

/**
 * spec.loss: each parameter only where the configuration uses it (configurations.ts). Their ranges are LossParams',
 * SpaParams' and WdroBudget's buf.validate annotations (checkRanges).
 */
export function checkLoss(loss: LossParams | undefined, plan: ConfigurationPlan, configuration: Configuration, rounds: number): void {
  const name = configName(configuration);
  if (!loss) {
    checkWdro(undefined, plan, name);
    return;
  }
  const usesSpa = plan.dnd !== 'none';
  if (loss.spa) {
    check(usesSpa, 'loss.spa', `is only used by the configurations with self-refinement (spa, spa-no-dnd, wdro-sr), not ${name}`);
    check(loss.spa.dndLambda === 0, 'loss.spa.dnd_lambda', 'must be 0: λ is set per round by loss.dnd_lambda_schedule');
  }
  if (loss.dndLambdaSchedule.length > 0) {
    check(
      plan.dnd === 'schedule',
      'loss.dnd_lambda_schedule',
      `is only used by the configurations with de-coupled noise detection (spa, wdro-sr), not ${name}` +
        (plan.dnd === 'off' ? ' (it runs with λ = 0)' : ''),
    );
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
  }
  if (loss.drdpoBetaPrime !== undefined) {
    check(plan.drdpoBetaPrime, 'loss.drdpo_beta_prime', `is only used by drdpo, not ${name}`);
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
  check(wdro!.radius !== undefined, 'loss.wdro.radius', 'one of epsilon or rho is required');
}

/**
 * When the adversary is solved (docs/algorithm.md §7, per-round adversary): only for the W-DRO configurations, and
 * a group size only with the per-round schedule, of at least 2 pairs (one pair alone has nothing to re-weight).
 */
function checkAdversarySchedule(loss: LossParams, plan: ConfigurationPlan, name: string): void {
  if (loss.adversarySchedule !== undefined) {
    check(plan.wdro, 'loss.adversary_schedule', `is only used by wdro and wdro-sr, not ${name}`);
  }
  if (loss.adversaryGroupSize !== undefined) {
    check(
      loss.adversarySchedule === AdversarySchedule.ADVERSARY_SCHEDULE_PER_ROUND,
      'loss.adversary_group_size',
      'is only used with adversary_schedule ADVERSARY_SCHEDULE_PER_ROUND',
    );
  }
}
