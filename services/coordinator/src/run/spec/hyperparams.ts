import type { TrainingHyperparams } from '@alignment/contracts';
import { check } from './fields';

/** What the ranges (TrainingHyperparams' buf.validate annotations) cannot say: required, and how fields relate. */
export function checkHyperparams(h: TrainingHyperparams | undefined, p: string): void {
  check(h !== undefined, p, 'is required (at least learning_rate and batch_size)');
  check(h!.batchSize >= 1, `${p}.batch_size`, `must be >= 1, got ${h!.batchSize}`);
  const accumulation = h!.gradientAccumulationSteps || 1;
  check(
    h!.batchSize % accumulation === 0,
    `${p}.gradient_accumulation_steps`,
    `must divide batch_size (${h!.batchSize} % ${accumulation} != 0)`,
  );
  check(h!.seed === 0, `${p}.seed`, 'must be 0: training seeds are derived per round from spec.seed');
}
