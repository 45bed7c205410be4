import type { TrainingHyperparams } from '@alignment/contracts';
import { check, finite } from './fields';

const LR_SCHEDULERS = ['', 'cosine', 'linear', 'constant'];

export function checkHyperparams(h: TrainingHyperparams | undefined, p: string): void {
  check(h !== undefined, p, 'is required (at least learning_rate and batch_size)');
  finite(h!.learningRate, `${p}.learning_rate`);
  check(h!.learningRate > 0 && h!.learningRate < 1, `${p}.learning_rate`, `must be in (0, 1), got ${h!.learningRate}`);
  finite(h!.epochs, `${p}.epochs`);
  check(h!.epochs >= 0, `${p}.epochs`, `must be >= 0 (0 = 1 epoch), got ${h!.epochs}`);
  check(h!.batchSize >= 1, `${p}.batch_size`, `must be >= 1, got ${h!.batchSize}`);
  const accumulation = h!.gradientAccumulationSteps || 1;
  check(
    h!.batchSize % accumulation === 0,
    `${p}.gradient_accumulation_steps`,
    `must divide batch_size (${h!.batchSize} % ${accumulation} != 0)`,
  );
  check(h!.maxLength === 0 || h!.maxLength >= 2, `${p}.max_length`, `must be 0 (trainer default) or >= 2, got ${h!.maxLength}`);
  if (h!.warmupRatio !== undefined) {
    finite(h!.warmupRatio, `${p}.warmup_ratio`);
    check(h!.warmupRatio >= 0 && h!.warmupRatio < 1, `${p}.warmup_ratio`, `must be in [0, 1), got ${h!.warmupRatio}`);
  }
  check(LR_SCHEDULERS.includes(h!.lrScheduler), `${p}.lr_scheduler`, `must be one of cosine, linear, constant, got '${h!.lrScheduler}'`);
  finite(h!.weightDecay, `${p}.weight_decay`);
  check(h!.weightDecay >= 0, `${p}.weight_decay`, `must be >= 0, got ${h!.weightDecay}`);
  finite(h!.maxGradNorm, `${p}.max_grad_norm`);
  check(h!.maxGradNorm >= 0, `${p}.max_grad_norm`, `must be >= 0, got ${h!.maxGradNorm}`);
  check(h!.seed === 0, `${p}.seed`, 'must be 0: training seeds are derived per round from spec.seed');
}
