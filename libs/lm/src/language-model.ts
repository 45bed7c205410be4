import { OnnxCausalLM, type SessionSettings } from './causal-lm';
import { ModelDirectoryError } from './errors';
import { readModelDirectory, type ModelDirectory } from './model-dir';
import { ChatTokenizer } from './tokenizer';

/** A causal LM ready for generation and scoring: ONNX session, tokenizer and chat template of one directory. */
export class LanguageModel {
  private constructor(
    readonly model: ModelDirectory,
    readonly tokenizer: ChatTokenizer,
    readonly lm: OnnxCausalLM,
    /** Ids that end a sample: the tokenizer's EOS and every eos_token_id of config.json / generation_config.json. */
    readonly stopTokenIds: ReadonlySet<number>,
  ) {}

  /** Loads a model directory (see model-dir.ts); a bad directory is a ModelDirectoryError naming the problem. */
  static async load(directory: string, settings?: SessionSettings): Promise<LanguageModel> {
    const model = readModelDirectory(directory);
    const tokenizer = new ChatTokenizer(model);
    const lm = await OnnxCausalLM.load(model, settings);
    if (lm.vocabSize < tokenizer.eosTokenId) {
      await lm.release();
      throw new ModelDirectoryError(model.directory, `config.json vocab_size ${lm.vocabSize} does not cover the EOS id ${tokenizer.eosTokenId}`);
    }
    return new LanguageModel(model, tokenizer, lm, new Set([tokenizer.eosTokenId, ...model.config.eosTokenIds]));
  }

  /** Longest prompt + response, in tokens. */
  get maxPositions(): number {
    return this.model.config.maxPositions;
  }

  get vocabSize(): number {
    return this.lm.vocabSize;
  }

  release(): Promise<void> {
    return this.lm.release();
  }
}
