import { PromptEncoding } from '@alignment/contracts';
import { LmArgumentError } from './errors';
import type { StringPromptEncoding } from './tokenizer';

/**
 * A request's PromptEncoding as the tokenizer takes it: unset or UNSPECIFIED is raw text (TRL's standard prompt, the
 * documented default), CHAT_TEMPLATE wraps a string prompt in the chat template. Any other value is an
 * LmArgumentError on `field`.
 */
export function stringPromptEncoding(value: PromptEncoding | undefined, field = 'prompt_encoding'): StringPromptEncoding {
  switch (value ?? PromptEncoding.PROMPT_ENCODING_UNSPECIFIED) {
    case PromptEncoding.PROMPT_ENCODING_UNSPECIFIED:
    case PromptEncoding.PROMPT_ENCODING_RAW_TEXT:
      return 'raw-text';
    case PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE:
      return 'chat-template';
    default:
      throw new LmArgumentError(field, `must be PROMPT_ENCODING_RAW_TEXT (the default) or PROMPT_ENCODING_CHAT_TEMPLATE, got ${value}`);
  }
}
