import { PromptEncoding, type RunSpec } from '@alignment/contracts';
import { settingInput, type StageInput } from './stages/stage';

/**
 * The run's encoding of string prompts (coordinator.proto RunSpec.prompt_encoding): unset or UNSPECIFIED is
 * PROMPT_ENCODING_RAW_TEXT (TRL's default); every GENERATE, JUDGE, LEARN and EVALUATE call is sent the resolved value.
 */
export function promptEncoding(spec: RunSpec): PromptEncoding {
  const value = spec.promptEncoding ?? PromptEncoding.PROMPT_ENCODING_UNSPECIFIED;
  return value === PromptEncoding.PROMPT_ENCODING_UNSPECIFIED ? PromptEncoding.PROMPT_ENCODING_RAW_TEXT : value;
}

/**
 * The stage input of a spec whose encoding is not the default (stage.ts settingInput): a run that encodes string
 * prompts with the chat template fingerprints its model-reading stages with it; a raw-text run declares nothing.
 */
export function promptEncodingInput(spec: RunSpec): { promptEncoding?: StageInput<PromptEncoding> } {
  const value = promptEncoding(spec);
  return value === PromptEncoding.PROMPT_ENCODING_RAW_TEXT ? {} : { promptEncoding: settingInput(value) };
}
