import { Stage, type ArtifactRef, type ModelRef, type RunSpec } from '@alignment/contracts';
import type { CallContext, StageExecutors } from '../executors';
import type { StageOutput } from '../stage-manifest';

/**
 * What every stage of a round is made of (docs/architecture.md, "Data flow of one round"): the inputs it consumes,
 * declared once, and its execution. The engine fingerprints the inputs' identities to decide whether a stage.json
 * still holds for them (skip on resume) and hands the very same object to `execute`, so the two cannot drift.
 */

/** One input of a stage: the value its execution reads and the identity its stage.json records for it. */
export interface StageInput<T> {
  value: T;
  /** The input's sha256 (or, for a spec input without one, its URI). */
  identity: string;
}

export type StageInputs = Record<string, StageInput<unknown>>;

/** What a stage hands back: its named outputs, its round metrics, warnings to say loudly, the trainer job it ran. */
export interface StageResult {
  outputs: Record<string, StageOutput>;
  metrics: Record<string, number>;
  warnings?: string[];
  jobId?: string;
}

/** Everything an executing stage may use besides its inputs. */
export interface StageContext {
  runId: string;
  /** Makes trainer job ids unique across coordinators reusing a run id. */
  nonce: string;
  spec: RunSpec;
  round: number;
  /** $DATA_DIR/runs/<run>/round-<t>/<stage>/: outputs go here, intermediates under work/. */
  dir: string;
  /** Derived from (run seed, round, stage). */
  seed: number;
  /** Executions of this stage that did not resume an in-flight one (part of the trainer job id). */
  attempt: number;
  /** MODEL_STORE_URI: LEARN publishes its model there (model-store.ts) instead of under `dir`. */
  modelStore?: string;
  executors: StageExecutors;
  call: CallContext;
}

export interface StageDefinition<Inputs extends StageInputs> {
  stage: Stage;
  /** The inputs the stage consumes now, from the spec and the outputs of the stages before it. */
  inputs(spec: RunSpec, round: number, outputs: StageOutputs): Inputs;
  execute(inputs: Inputs, ctx: StageContext): Promise<StageResult>;
}

/** Input name -> identity: what the stage's stage.json records and must match to be skipped. */
export function inputIdentities(inputs: StageInputs): Record<string, string> {
  return Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.identity]));
}

/** An input the run spec names (pinned when the run started): identified by its sha256, else its URI. */
export function specInput(ref: ArtifactRef | undefined): StageInput<ArtifactRef | undefined> {
  return { value: ref, identity: ref?.sha256 ? ref.sha256 : ref?.uri ?? '' };
}

/**
 * A setting of the spec that changes what a stage produces, identified by its value. Stages declare one only when
 * it is set to other than its default, so runs that leave it unset keep the fingerprints they had before it existed.
 */
export function settingInput<T extends number | boolean | string>(value: T): StageInput<T> {
  return { value, identity: String(value) };
}

export const fileOutput = (ref: ArtifactRef): StageOutput => ({ uri: ref.uri, sha256: ref.sha256, sizeBytes: ref.sizeBytes, kind: 'file' });
export const artifactRef = (output: StageOutput): ArtifactRef => ({ uri: output.uri, sha256: output.sha256, sizeBytes: output.sizeBytes });

/** A model a LEARN stage produced, from its outputs: π_t ('model'), or round 0's frozen judge π_J ('judge_model'). */
export type LearnedModelName = 'model' | 'judge_model';

/** The model a LEARN stage produced under `name`, from its outputs. */
export function modelOf(outputs: Record<string, StageOutput>, name: LearnedModelName = 'model'): ModelRef {
  return { hfCheckpoint: artifactRef(outputs[`${name}.hf_checkpoint`]), onnx: artifactRef(outputs[`${name}.onnx`]) };
}

/** π_t of an input made by `StageOutputs.model`, or the error that round `round` has not learned in this execution. */
export function learnedModel(input: StageInput<ModelRef | undefined>, round: number): ModelRef {
  if (!input.value) throw new Error(`round ${round} LEARN has no outputs in this execution`);
  return input.value;
}

/** Outputs of the stages done so far in one execution of a run (executed, or skipped as verified). */
export class StageOutputs {
  private readonly byStage = new Map<string, Record<string, StageOutput>>();

  set(round: number, stage: Stage, outputs: Record<string, StageOutput>): void {
    this.byStage.set(`${round}:${stage}`, outputs);
  }

  /** An earlier stage's output as an input, identified by its sha256 ('' when there is none). */
  input(round: number, stage: Stage, name: string): StageInput<ArtifactRef | undefined> {
    const output = this.byStage.get(`${round}:${stage}`)?.[name];
    return { value: output && artifactRef(output), identity: output?.sha256 ?? '' };
  }

  /** The model of round `round`'s LEARN (π_t, or round 0's π_J) as an input, identified by its ONNX export. */
  model(round: number, name: LearnedModelName = 'model'): StageInput<ModelRef | undefined> {
    const learned = this.byStage.get(`${round}:${Stage.STAGE_LEARN}`);
    const onnx = learned?.[`${name}.onnx`];
    return { value: onnx && modelOf(learned!, name), identity: onnx?.sha256 ?? '' };
  }
}
