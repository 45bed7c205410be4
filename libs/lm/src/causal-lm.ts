import * as fs from 'node:fs';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { availableCores } from './cpu-cores';
import { ModelDirectoryError } from './errors';
import { emptyKvCache, type KvCache, type KvShape } from './kv-cache';
import type { ModelDirectory } from './model-dir';
import { ARGMAX_GATE, INV_TEMPERATURE, LOGIT_POSITIONS, NEXT_ARGMAX, NEXT_PROBS, TARGET_IDS, TARGET_LOGPROBS, augmentCausalLmGraph } from './onnx-graph';

export interface SessionSettings {
  /** onnxruntime intra-op threads; default: $LM_THREADS, else the cores this process may use (cpu-cores.ts). */
  threads?: number;
}

export function sessionOptions(settings: SessionSettings = {}): InferenceSession.SessionOptions {
  const fromEnv = Number(process.env.LM_THREADS);
  const threads = settings.threads ?? (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableCores());
  return { graphOptimizationLevel: 'all', executionProviders: ['cpu'], intraOpNumThreads: threads };
}

/**
 * Creates a session from graph bytes (the runtime extends graphs in memory, see onnx-graph.ts). Weights stored as
 * external data (model.onnx_data) are read from the model directory: onnxruntime resolves them against
 * `model_external_initializers_file_folder_path` when the graph comes from a buffer.
 */
export async function createSession(model: ModelDirectory, bytes: Uint8Array, settings?: SessionSettings): Promise<InferenceSession> {
  const options = sessionOptions(settings);
  if (model.externalData) options.extra = { session: { model_external_initializers_file_folder_path: model.directory } };
  try {
    return await InferenceSession.create(bytes, options);
  } catch (error) {
    throw new ModelDirectoryError(model.directory, `onnxruntime cannot load model.onnx: ${(error as Error).message}`);
  }
}

export interface ForwardInput {
  batch: number;
  /** New positions per row in this call. */
  seq: number;
  /** [batch, seq] token ids. */
  inputIds: BigInt64Array;
  /** [batch, past.length + seq]: 1 for real tokens, 0 for padding. */
  attentionMask: BigInt64Array;
  /** [batch, seq] position of each new token within its row's real tokens. */
  positionIds: BigInt64Array;
  past: KvCache;
  /** [batch, seq] the token whose log-prob to return at each position (scoring; needs want.targetLogprobs). */
  targetIds?: BigInt64Array;
  /** 1 / temperature applied before the softmax of NEXT probabilities. */
  invTemperature?: number;
  want: { targetLogprobs?: boolean; nextProbs?: boolean; nextArgmax?: boolean };
}

export interface ForwardOutput {
  present: KvCache;
  /** [batch, seq] log p(targetIds[b, t] | tokens up to t). */
  targetLogprobs?: Float32Array;
  /** [batch, vocab] softmax(logits of the last position / temperature). */
  nextProbs?: Float32Array;
  /** [batch] argmax of the last position's logits. */
  nextArgmax?: BigInt64Array;
}

/**
 * A decoder-only LM exported with its KV cache in the Optimum layout (inputs input_ids, attention_mask,
 * position_ids, past_key_values.{i}.key/value; outputs logits, present.{i}.key/value), extended with the reduced
 * outputs of onnx-graph.ts so full [batch, time, vocab] logits never reach JavaScript.
 */
export class OnnxCausalLM {
  private constructor(
    private readonly session: InferenceSession,
    readonly kvShape: KvShape,
    readonly vocabSize: number,
    private readonly pastNames: string[],
    private readonly presentNames: string[],
  ) {}

  static async load(model: ModelDirectory, settings?: SessionSettings): Promise<OnnxCausalLM> {
    let bytes: Uint8Array;
    try {
      bytes = augmentCausalLmGraph(fs.readFileSync(model.onnxPath));
    } catch (error) {
      throw new ModelDirectoryError(model.directory, `model.onnx is not a usable ONNX model: ${(error as Error).message}`);
    }
    const session = await createSession(model, bytes, settings);
    const fail = (reason: string): never => {
      void session.release();
      throw new ModelDirectoryError(model.directory, `model.onnx is not a causal LM with a KV cache in the Optimum layout: ${reason}`);
    };
    for (const name of ['input_ids', 'attention_mask', 'position_ids']) if (!session.inputNames.includes(name)) fail(`no input ${name}`);
    if (!session.outputNames.includes('logits')) fail('no output logits');
    const pastNames: string[] = [];
    const presentNames: string[] = [];
    for (let i = 0; session.inputNames.includes(`past_key_values.${i}.key`); i++) {
      for (const kv of ['key', 'value']) {
        if (!session.inputNames.includes(`past_key_values.${i}.${kv}`)) fail(`no input past_key_values.${i}.${kv}`);
        if (!session.outputNames.includes(`present.${i}.${kv}`)) fail(`no output present.${i}.${kv}`);
        pastNames.push(`past_key_values.${i}.${kv}`);
        presentNames.push(`present.${i}.${kv}`);
      }
    }
    if (pastNames.length === 0) fail('no past_key_values.0.key input');
    const meta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
    const dims = meta && meta.isTensor ? meta.shape : [];
    const logitsMeta = session.outputMetadata.find((m) => m.name === 'logits');
    if (logitsMeta?.isTensor && logitsMeta.type !== 'float32') fail(`logits are ${logitsMeta.type}, float32 is needed`);
    const [kvHeads, headDim] = [dims[1], dims[3]];
    if (typeof kvHeads !== 'number' || typeof headDim !== 'number') fail('past key shape [batch, kv_heads, past, head_dim] has symbolic heads or head_dim');
    return new OnnxCausalLM(
      session,
      { layers: pastNames.length / 2, kvHeads: kvHeads as number, headDim: headDim as number },
      model.config.vocabSize,
      pastNames,
      presentNames,
    );
  }

  emptyCache(batch: number): KvCache {
    return emptyKvCache(this.kvShape, batch);
  }

  async forward(input: ForwardInput): Promise<ForwardOutput> {
    const { batch, seq, past } = input;
    const { want } = input;
    if (want.targetLogprobs && input.targetIds?.length !== batch * seq) throw new RangeError('targetIds must be [batch, seq]');
    // The control inputs' sizes switch the extra branches on or off (onnx-graph.ts): width 0 computes nothing. The
    // LM head runs on every position when scoring, on the last one when sampling, and not at all otherwise.
    const logitPositions = want.targetLogprobs ? seq : want.nextProbs || want.nextArgmax ? 1 : 0;
    const feeds: Record<string, Tensor> = {
      [LOGIT_POSITIONS]: new Tensor('int64', new BigInt64Array(logitPositions), [logitPositions]),
      input_ids: new Tensor('int64', input.inputIds, [batch, seq]),
      attention_mask: new Tensor('int64', input.attentionMask, [batch, past.length + seq]),
      position_ids: new Tensor('int64', input.positionIds, [batch, seq]),
      [TARGET_IDS]: want.targetLogprobs ? new Tensor('int64', input.targetIds!, [batch, seq]) : new Tensor('int64', new BigInt64Array(0), [batch, 0]),
      [INV_TEMPERATURE]: new Tensor('float32', want.nextProbs ? Float32Array.of(input.invTemperature ?? 1) : new Float32Array(0), [want.nextProbs ? 1 : 0]),
      [ARGMAX_GATE]: new Tensor('int64', new BigInt64Array(want.nextArgmax ? 1 : 0), [want.nextArgmax ? 1 : 0]),
    };
    this.pastNames.forEach((name, i) => (feeds[name] = past.tensors[i]));
    const fetches = [...this.presentNames];
    if (want.targetLogprobs) fetches.push(TARGET_LOGPROBS);
    if (want.nextProbs) fetches.push(NEXT_PROBS);
    if (want.nextArgmax) fetches.push(NEXT_ARGMAX);
    const out = await this.session.run(feeds, fetches);
    return {
      present: { batch, length: past.length + seq, tensors: this.presentNames.map((n) => out[n]) },
      targetLogprobs: want.targetLogprobs ? (out[TARGET_LOGPROBS].data as Float32Array) : undefined,
      nextProbs: want.nextProbs ? (out[NEXT_PROBS].data as Float32Array) : undefined,
      nextArgmax: want.nextArgmax ? (out[NEXT_ARGMAX].data as BigInt64Array) : undefined,
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
