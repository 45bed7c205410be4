import { Stage } from '@alignment/contracts';
import { evaluateStage } from './evaluate';
import { generateStage } from './generate';
import { judgeStage } from './judge';
import { learnStage } from './learn';
import type { StageDefinition, StageInputs } from './stage';

export * from './stage';

const STAGES: ReadonlyMap<Stage, StageDefinition<StageInputs>> = new Map<Stage, StageDefinition<StageInputs>>([
  [Stage.STAGE_GENERATE, generateStage],
  [Stage.STAGE_JUDGE, judgeStage],
  [Stage.STAGE_LEARN, learnStage],
  [Stage.STAGE_EVALUATE, evaluateStage],
]);

/** The definition of one of a round's stages. */
export function stageDefinition(stage: Stage): StageDefinition<StageInputs> {
  const definition = STAGES.get(stage);
  if (!definition) throw new Error(`unknown stage ${stage}`);
  return definition;
}
