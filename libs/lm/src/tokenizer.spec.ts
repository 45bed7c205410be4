import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { LmArgumentError } from './errors';
import { readModelDirectory } from './model-dir';
import { ChatTemplate, ChatTokenizer } from './tokenizer';

let models: TinyModels;
let tokenizer: ChatTokenizer;

beforeAll(async () => {
  models = await tinyModels();
  tokenizer = new ChatTokenizer(readModelDirectory(models.policy));
}, TINY_MODELS_TIMEOUT_MS);

describe('chat template and tokenizer, against transformers', () => {
  it("renders and encodes prompts to the same ids as the Python tokenizer's apply_chat_template(add_generation_prompt=True)", () => {
    expect(models.values.chat.length).toBeGreaterThan(1);
    for (const ref of models.values.chat) {
      expect(tokenizer.applyChatTemplate(ref.messages, { addGenerationPrompt: true })).toBe(ref.text);
      expect(tokenizer.encodePrompt(ref.messages, { strings: 'chat-template' })).toEqual(ref.ids);
      expect(tokenizer.encodePrompt(ref.messages, { strings: 'chat-template' })).toEqual(ref.ids_direct);
    }
    const single = models.values.chat.find((c) => c.messages.length === 1)!;
    expect(tokenizer.encodePrompt(single.messages[0].content, { strings: 'chat-template' })).toEqual(single.ids);
  });

  it('encodes a string prompt as raw text (no template token) or as one templated user turn; a conversation always templated', () => {
    const single = models.values.chat.find((c) => c.messages.length === 1)!;
    const text = single.messages[0].content;
    const raw = tokenizer.encodePrompt(text, { strings: 'raw-text' });
    expect(raw).toEqual(tokenizer.encodeText(text));
    expect(tokenizer.decode(raw)).toBe(text);
    const templated = tokenizer.encodePrompt(text, { strings: 'chat-template' });
    expect(templated).toEqual(single.ids);
    expect(templated.length).toBeGreaterThan(raw.length);
    // The raw ids hold none of the template's own tokens: the templated text minus the prompt is all template.
    expect(tokenizer.decode(templated, { skipSpecialTokens: false })).not.toBe(tokenizer.decode(raw, { skipSpecialTokens: false }));
    const conversation = models.values.chat.find((c) => c.messages.length > 1)!;
    expect(tokenizer.encodePrompt(conversation.messages, { strings: 'raw-text' })).toEqual(conversation.ids);
  });

  it('encodes text without added special tokens (special-token strings still match) and responses with EOS appended', () => {
    for (const ref of models.values.encode) expect(tokenizer.encodeText(ref.text)).toEqual(ref.ids);
    for (const ref of models.values.scores.policy) expect(tokenizer.encodeResponse(ref.response)).toEqual(ref.response_ids);
    expect(tokenizer.eosTokenId).toBe(models.values.eos_token_id);
    expect(tokenizer.padTokenId).toBe(models.values.pad_token_id);
  });

  it('encodes an unfinished response (cut at max_new_tokens) without EOS, as the trainer tokenises it', () => {
    for (const ref of models.values.scores_unfinished.policy) {
      expect(tokenizer.encodeResponse(ref.response, { finished: false })).toEqual(ref.response_ids);
      expect(tokenizer.encodeResponse(ref.response, { finished: false })).toEqual(tokenizer.encodeText(ref.response));
      expect(tokenizer.encodeResponse(ref.response, { finished: true })).toEqual([...ref.response_ids, tokenizer.eosTokenId]);
    }
  });

  it('decodes what it encodes, skipping special tokens and ids beyond the vocabulary', () => {
    const ids = tokenizer.encodeText('Ça va — très bien!');
    expect(tokenizer.decode([...ids, tokenizer.eosTokenId, 100_000])).toBe('Ça va — très bien!');
  });

  it("keeps spaces before punctuation, as transformers >= 5 decodes (text re-encodes to the tokens that made it)", () => {
    for (const text of ['the answer is 11 .', "it is n't , is it ?", 'wow !']) {
      expect(tokenizer.decode(tokenizer.encodeText(text))).toBe(text);
    }
  });

  it('renders Llama-3, ChatML, Zephyr and Mistral style templates exactly as transformers does, raise_exception included', () => {
    const special = models.values.template_special_tokens;
    expect(models.values.templates.length).toBeGreaterThanOrEqual(16);
    for (const ref of models.values.templates) {
      const template = new ChatTemplate(ref.template, special);
      const render = () => template.render(ref.messages, { addGenerationPrompt: ref.add_generation_prompt, field: 'prompt' });
      if (ref.error !== undefined) {
        expect(render).toThrow(LmArgumentError);
        expect(render).toThrow(ref.error);
      } else {
        expect({ name: ref.name, text: render() }).toEqual({ name: ref.name, text: ref.text });
      }
    }
  });
});
