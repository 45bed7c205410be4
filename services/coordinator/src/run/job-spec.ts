import { fileUri, isS3Uri } from '@alignment/artifacts';
import type { ArtifactRef, JobSpec, PreferenceJob, RunSpec } from '@alignment/contracts';
import { configurationPlan, dndLambda } from './configurations';
import { promptEncoding } from './prompt-encoding';

/**
 * The trainer job of one LEARN stage (docs/algorithm.md §2 step 3): π_θ ← π_{t−1} and π_ref ← π_{t−1} (π_init in
 * round 0, and in every round with RunSpec.anchored_reference), the loss and its parameters as configurations.ts maps the configuration, and the round's
 * hyper-parameters with the stage's derived seed. Deterministic in its arguments: a restarted coordinator sends
 * the same spec again, which the trainer's StartJob requires to re-attach to the job.
 */
export function preferenceJobSpec(args: {
  spec: RunSpec;
  round: number;
  /** π_{t−1}'s Hugging Face checkpoint (π_init's in round 0). */
  init: ArtifactRef;
  pairs: ArtifactRef;
  /** The job's output: a local directory, or an s3:// prefix the trainer publishes to (model-store.ts). */
  output: string;
  seed: number;
  /** DPO's reference when it is not `init`: π_init's checkpoint in rounds ≥ 1 with RunSpec.anchored_reference. */
  reference?: ArtifactRef;
  /** Overrides the round's learning rate: round 0's frozen-judge job (RunSpec.judge_learning_rate). */
  learningRate?: number;
}): JobSpec {
  const { spec, round } = args;
  const plan = configurationPlan(spec.configuration);
  const loss = spec.loss;
  const preference: PreferenceJob = {
    init: args.init,
    reference: args.reference ?? args.init,
    pairs: args.pairs,
    loss: round === 0 ? plan.seedLoss : plan.roundLoss!,
    beta: loss?.beta,
    spa: undefined,
    wdro: undefined,
    droSolverAddress: '',
    labelSmoothing: undefined,
    drdpoBetaPrime: undefined,
    promptEncoding: promptEncoding(spec),
  };
  if (round > 0 && plan.dnd !== 'none') {
    const spa = loss?.spa;
    preference.spa = {
      alpha: spa?.alpha,
      kPercentile: spa?.kPercentile,
      window: spa?.window ?? 0,
      warmupFraction: spa?.warmupFraction,
      dndLambda: plan.dnd === 'schedule' ? dndLambda(loss?.dndLambdaSchedule ?? [], round) : 0,
    };
  }
  if (round > 0 && plan.wdro) {
    preference.wdro = loss?.wdro;
    preference.adversarySchedule = loss?.adversarySchedule;
    preference.adversaryGroupSize = loss?.adversaryGroupSize;
  }
  if (round === 0 && plan.labelSmoothing) preference.labelSmoothing = loss?.labelSmoothing;
  if (round === 0 && plan.drdpoBetaPrime) preference.drdpoBetaPrime = loss?.drdpoBetaPrime;
  const hparams = round === 0 ? spec.seedTraining! : spec.roundTraining!;
  return {
    kind: { $case: 'preference', value: preference },
    hparams: { ...hparams, ...(args.learningRate !== undefined ? { learningRate: args.learningRate } : {}), seed: args.seed },
    outputUri: isS3Uri(args.output) ? args.output : fileUri(args.output),
    exportOnnx: true,
  };
}

/**
 * The job with a trainer checkpoint interval when its hyper-parameters set none (0), so that a trainer stopped
 * mid-LEARN resumes from its last checkpoint; unchanged when `every` is unset. Deterministic, as re-attaching needs.
 */
export function withCheckpointInterval(spec: JobSpec, every: number | undefined): JobSpec {
  return every && spec.hparams && !spec.hparams.checkpointEverySteps ? { ...spec, hparams: { ...spec.hparams, checkpointEverySteps: every } } : spec;
}
