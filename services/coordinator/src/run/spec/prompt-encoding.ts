import * as fs from 'node:fs';
import * as path from 'node:path';
import { toLocalPath, type DataPrompt } from '@alignment/artifacts';
import { PromptEncoding, type ModelRef, type RunSpec } from '@alignment/contracts';
import { promptEncoding } from '../prompt-encoding';
import { fail } from './fields';

/** Whether a model directory has a chat template, where transformers and libs/lm look: chat_template.jinja, else tokenizer_config.json. */
function hasChatTemplate(dir: string): boolean {
  if (fs.existsSync(path.join(dir, 'chat_template.jinja'))) return true;
  try {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: unknown };
    const template = config.chat_template;
    return (typeof template === 'string' && template !== '') || (Array.isArray(template) && template.length > 0);
  } catch {
    return false;
  }
}

/**
 * (That spec.prompt_encoding is one of the enum's values is a buf.validate annotation, checked with the ranges.)
 * What a pinned base model lacking a chat template can run: string prompts encoded as raw text only. Returns a
 * check for the spec's data files, which refuses a conversational prompt (always rendered with the template) naming
 * the file's field, the line and the fix; refuses PROMPT_ENCODING_CHAT_TEMPLATE naming spec.prompt_encoding.
 */
export function templateRequirement(spec: RunSpec, baseModel: ModelRef): (prompts: Array<{ prompt: DataPrompt; where: string }>, p: string) => void {
  const dirs = [baseModel.onnx, baseModel.hfCheckpoint].filter((ref) => ref?.uri).map((ref) => toLocalPath(ref!.uri));
  const missing = dirs.filter((dir) => !hasChatTemplate(dir));
  if (missing.length === 0) return () => undefined;
  if (promptEncoding(spec) === PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE) {
    fail('prompt_encoding', `is PROMPT_ENCODING_CHAT_TEMPLATE but base_model has no chat template (${missing.join(', ')} holds neither chat_template.jinja nor a tokenizer_config.json chat_template): use PROMPT_ENCODING_RAW_TEXT (the default), or a model with a chat template`);
  }
  return (prompts, p) => {
    const conversational = prompts.find((x) => typeof x.prompt !== 'string');
    if (conversational) {
      fail(`${p}.uri`, `${conversational.where}: "prompt" is a conversation (message list), which is rendered with the chat template, and base_model has none: give the prompts as text (standard form), encoded as raw text, or use a model with a chat template`);
    }
  };
}
