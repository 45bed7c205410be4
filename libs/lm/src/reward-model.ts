import * as fs from 'node:fs';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { createSession, type SessionSettings } from './causal-lm';
import { throwIfAborted } from '@alignment/errors';
import { LmArgumentError, ModelDirectoryError } from './errors';
import { readModelDirectory, type ModelDirectory } from './model-dir';
import { ChatTokenizer, type Prompt } from './tokenizer';

export interface RewardOptions {
  signal?: AbortSignal;
  /** Sequences per forward pass. Default 8. */
  maxBatchRows?: number;
}

/**
 * A reward model: an ONNX sequence classifier with one label (e.g. LlamaForSequenceClassification exported with
 * inputs input_ids, attention_mask [, position_ids] and output logits [batch, 1]). A (prompt, response) pair is
 * scored as the whole conversation through the model's chat template (user turn, assistant turn, no generation
 * prompt), the input reward models of this kind are trained on.
 */
export class RewardModel {
  private constructor(
    readonly model: ModelDirectory,
    readonly tokenizer: ChatTokenizer,
    private readonly session: InferenceSession,
    /** Right-padding id; the classifier pools the last non-pad token, as transformers does with pad_token_id. */
    private readonly padId: number | undefined,
  ) {}

  static async load(directory: string, settings?: SessionSettings): Promise<RewardModel> {
    const model = readModelDirectory(directory);
    const tokenizer = new ChatTokenizer(model);
    if (!tokenizer.hasChatTemplate) throw new ModelDirectoryError(model.directory, 'no chat template: conversations are rendered with it');
    const session = await createSession(model, fs.readFileSync(model.onnxPath), settings);
    const fail = async (reason: string): Promise<never> => {
      await session.release();
      throw new ModelDirectoryError(model.directory, `model.onnx is not a one-label sequence classifier: ${reason}`);
    };
    for (const name of ['input_ids', 'attention_mask']) if (!session.inputNames.includes(name)) await fail(`no input ${name}`);
    const extra = session.inputNames.filter((n) => !['input_ids', 'attention_mask', 'position_ids'].includes(n));
    if (extra.length > 0) await fail(`unexpected inputs ${extra.join(', ')}`);
    if (!session.outputNames.includes('logits')) await fail('no output logits');
    const logits = session.outputMetadata.find((m) => m.name === 'logits');
    const labels = logits?.isTensor ? logits.shape[1] : undefined;
    if (typeof labels === 'number' && labels !== 1) await fail(`logits have ${labels} labels`);
    return new RewardModel(model, tokenizer, session, model.config.padTokenId ?? tokenizer.padTokenId);
  }

  get maxPositions(): number {
    return this.model.config.maxPositions;
  }

  /** Token ids of (prompt, response) as the classifier reads them. */
  encode(prompt: Prompt, response: string, field = 'prompt'): number[] {
    const messages = typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : [...prompt];
    messages.push({ role: 'assistant', content: response });
    return this.tokenizer.encodeText(this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false, field }));
  }

  /** Why a sequence cannot be scored (empty, or longer than the context), or undefined. */
  sequenceProblem(ids: readonly number[]): string | undefined {
    if (ids.length === 0) return 'has no tokens';
    if (ids.length > this.maxPositions) return `has ${ids.length} tokens, more than the model's context of ${this.maxPositions}`;
    return undefined;
  }

  /** One reward per sequence. Sequences are sorted by length and batched; without a pad id, one per pass. */
  async score(sequences: readonly (readonly number[])[], options: RewardOptions = {}): Promise<number[]> {
    sequences.forEach((ids, i) => {
      const problem = this.sequenceProblem(ids);
      if (problem) throw new LmArgumentError(`items[${i}]`, problem);
    });
    const rowsPerBatch = this.padId === undefined ? 1 : Math.max(1, options.maxBatchRows ?? 8);
    const order = sequences.map((_, i) => i).sort((a, b) => sequences[b].length - sequences[a].length || a - b);
    const rewards = new Array<number>(sequences.length);
    for (let start = 0; start < order.length; start += rowsPerBatch) {
      throwIfAborted(options.signal);
      const batch = order.slice(start, start + rowsPerBatch);
      const width = sequences[batch[0]].length;
      const ids = new BigInt64Array(batch.length * width).fill(BigInt(this.padId ?? 0));
      const mask = new BigInt64Array(batch.length * width);
      const positions = new BigInt64Array(batch.length * width);
      batch.forEach((i, r) => {
        sequences[i].forEach((id, t) => {
          ids[r * width + t] = BigInt(id);
          mask[r * width + t] = 1n;
          positions[r * width + t] = BigInt(t);
        });
      });
      const feeds: Record<string, Tensor> = {
        input_ids: new Tensor('int64', ids, [batch.length, width]),
        attention_mask: new Tensor('int64', mask, [batch.length, width]),
      };
      if (this.session.inputNames.includes('position_ids')) feeds.position_ids = new Tensor('int64', positions, [batch.length, width]);
      const out = await this.session.run(feeds, ['logits']);
      const values = out.logits.data as Float32Array;
      const stride = values.length / batch.length;
      batch.forEach((i, r) => (rewards[i] = values[r * stride]));
    }
    return rewards;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
