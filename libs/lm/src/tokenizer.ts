import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { LmArgumentError, ModelDirectoryError } from './errors';
import type { ModelDirectory } from './model-dir';

/** One chat turn, as in Hugging Face chat templates. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** A prompt: text (TRL's standard form), or a whole conversation ending where the assistant should answer. */
export type Prompt = string | ChatMessage[];

/**
 * How a string prompt becomes the model's input (proto alignment.v1.PromptEncoding): 'raw-text' encodes the text as
 * it is, with no added special token and no template token (TRL's standard prompt); 'chat-template' renders it as one
 * user turn through the chat template with the generation prompt. A conversation always uses the chat template.
 */
export type StringPromptEncoding = 'raw-text' | 'chat-template';

/** What encodePrompt needs: the string-prompt encoding, and the fields its errors name. */
export interface PromptEncodingOptions {
  strings: StringPromptEncoding;
  /** The field a conversation the template refuses is reported on; default `prompt`. */
  field?: string;
  /** The field naming the encoding, reported when a string prompt asks for a template the model lacks; default `prompt_encoding`. */
  encodingField?: string;
}

// The special-token variables transformers passes to every chat template (tokenizer.special_tokens_map).
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

function tokenString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** A compiled chat template. Rendering matches transformers' `apply_chat_template(..., tokenize=False)`. */
export class ChatTemplate {
  private readonly template: Template;

  /** Throws (with the parser's message) when the source is not a valid template. */
  constructor(
    readonly source: string,
    private readonly specialTokens: Record<string, string>,
  ) {
    this.template = new Template(source);
  }

  /**
   * The conversation as text. As in transformers: trim_blocks and lstrip_blocks are on, the special tokens are
   * variables, `tools` and `documents` are none, and `raise_exception` aborts (here with LmArgumentError on `field`).
   */
  render(messages: ChatMessage[], options: { addGenerationPrompt: boolean; field?: string }): string {
    if (messages.length === 0) throw new LmArgumentError(options.field ?? 'prompt', 'a conversation needs at least one message');
    try {
      return this.template.render({
        ...this.specialTokens,
        messages,
        tools: null,
        documents: null,
        add_generation_prompt: options.addGenerationPrompt,
      });
    } catch (error) {
      throw new LmArgumentError(options.field ?? 'prompt', `the chat template refused it: ${(error as Error).message}`);
    }
  }
}

/**
 * The model's tokenizer and chat template, used exactly as the trainer uses them
 * (services/trainer/src/alignment_trainer/training/logprobs.py `tokenize_pair`): a conversation, or a string prompt
 * with 'chat-template', is rendered through the chat template with the generation prompt and encoded without added
 * special tokens (templates write their own BOS); a string prompt with 'raw-text' is encoded as it is, also without;
 * a response is encoded without special tokens and EOS is appended (none to an unfinished one).
 */
export class ChatTokenizer {
  readonly eosTokenId: number;
  readonly padTokenId: number | undefined;
  readonly specialTokens: Readonly<Record<string, string>>;
  private readonly tokenizer: Tokenizer;
  private readonly template: ChatTemplate | undefined;

  constructor(model: ModelDirectory) {
    try {
      // transformers >= 5 decodes without clean_up_tokenization_spaces unless the config turns it on; the JS library
      // defaults it on, which would turn a generated "11 ." into "11." and so into tokens the model never produced.
      const cleanUp = model.tokenizerConfig.clean_up_tokenization_spaces ?? false;
      this.tokenizer = new Tokenizer(model.tokenizerJson, { ...model.tokenizerConfig, clean_up_tokenization_spaces: cleanUp });
    } catch (error) {
      throw new ModelDirectoryError(model.directory, `tokenizer.json could not be loaded: ${(error as Error).message}`);
    }
    const special: Record<string, string> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const value = tokenString(model.tokenizerConfig[key]);
      if (value !== undefined) special[key] = value;
    }
    this.specialTokens = special;
    const eos = special.eos_token !== undefined ? this.tokenizer.token_to_id(special.eos_token) : undefined;
    const eosId = eos ?? model.config.eosTokenIds[0];
    if (eosId === undefined) {
      throw new ModelDirectoryError(model.directory, 'no EOS token (tokenizer_config.json eos_token or config.json eos_token_id): responses must end with EOS');
    }
    this.eosTokenId = eosId;
    const pad = special.pad_token !== undefined ? this.tokenizer.token_to_id(special.pad_token) : undefined;
    this.padTokenId = pad ?? model.config.padTokenId;
    if (model.chatTemplate !== undefined) {
      try {
        this.template = new ChatTemplate(model.chatTemplate, special);
      } catch (error) {
        throw new ModelDirectoryError(model.directory, `the chat template does not parse: ${(error as Error).message}`);
      }
    }
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /** The conversation rendered by the model's chat template (see ChatTemplate.render). */
  applyChatTemplate(messages: ChatMessage[], options: { addGenerationPrompt: boolean; field?: string }): string {
    if (!this.template) throw new LmArgumentError(options.field ?? 'prompt', 'the model directory has no chat template');
    return this.template.render(messages, options);
  }

  /**
   * Token ids of a prompt: a string as `options.strings` says (raw text, or one user turn through the chat template
   * with the generation prompt), a conversation through the chat template with the generation prompt. Asking for a
   * template the model lacks is an LmArgumentError on `encodingField` (a string) or `field` (a conversation).
   */
  encodePrompt(prompt: Prompt, options: PromptEncodingOptions): number[] {
    const field = options.field ?? 'prompt';
    if (typeof prompt === 'string') {
      if (options.strings === 'raw-text') return this.encodeText(prompt);
      if (!this.template) {
        throw new LmArgumentError(options.encodingField ?? 'prompt_encoding', 'PROMPT_ENCODING_CHAT_TEMPLATE needs a chat template, and the model directory has none: encode the prompts as raw text');
      }
      return this.encodeText(this.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true, field }));
    }
    if (!this.template) {
      throw new LmArgumentError(field, 'is a conversation (message list), which is rendered with the chat template, and the model directory has none: give the prompt as text');
    }
    return this.encodeText(this.applyChatTemplate(prompt, { addGenerationPrompt: true, field }));
  }

  /**
   * Token ids of a response as the trainer scores it: the text without special tokens, then EOS, unless the response
   * is unfinished (`finished: false`: the generator cut it at max_new_tokens), which never ended and so gets no EOS
   * (logprobs.py tokenize_pair's chosen_finished / rejected_finished).
   */
  encodeResponse(text: string, options: { finished?: boolean } = {}): number[] {
    const ids = this.encodeText(text);
    return options.finished === false ? ids : [...ids, this.eosTokenId];
  }

  /** Token ids of text, without added special tokens (special-token strings inside it still match). */
  encodeText(text: string): number[] {
    return text === '' ? [] : this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Text of token ids, special tokens skipped. Ids beyond the tokenizer's vocabulary (rows the embedding matrix is
   * padded with, which a trained model practically never samples) decode to nothing.
   */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) if (this.tokenizer.id_to_token(ids[i]) !== undefined) known.push(ids[i]);
    if (known.length === 0) return '';
    return this.tokenizer.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? true });
  }
}
