import { Stage, type RunSpec } from '@alignment/contracts';
import { effectiveRounds } from './configurations';

export interface PlannedStage {
  round: number;
  stage: Stage;
}

/**
 * The stages of a run, in order (docs/algorithm.md §2): round 0 = LEARN (seed DPO, after label noise if any) then
 * EVALUATE; each round t ≥ 1 = GENERATE → JUDGE → LEARN → EVALUATE. EVALUATE stages exist only when the spec has
 * an evaluation; seed-only configurations have round 0 only.
 */
export function planStages(spec: RunSpec): PlannedStage[] {
  const evaluate = spec.evaluation !== undefined;
  const stages: PlannedStage[] = [{ round: 0, stage: Stage.STAGE_LEARN }];
  if (evaluate) stages.push({ round: 0, stage: Stage.STAGE_EVALUATE });
  for (let round = 1; round <= effectiveRounds(spec.configuration, spec.rounds); round++) {
    stages.push({ round, stage: Stage.STAGE_GENERATE }, { round, stage: Stage.STAGE_JUDGE }, { round, stage: Stage.STAGE_LEARN });
    if (evaluate) stages.push({ round, stage: Stage.STAGE_EVALUATE });
  }
  return stages;
}
