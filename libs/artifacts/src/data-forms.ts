import { ArtifactError } from './errors';

/**
 * TRL's dataset forms mapped to the one representation the services use (examples/data/README.md has the table;
 * services/trainer/src/alignment_trainer/training/data_forms.py applies the same rules in Python):
 *
 *   preference, explicit prompt   {prompt, chosen, rejected}: strings (standard) or message lists (conversational)
 *   preference, implicit prompt   {chosen, rejected}: the prompt is their common prefix (of characters, or of messages)
 *   prompt-only                   {prompt}: a string or a message list
 *
 * A prompt stays a string (encoded as raw text, or as one user turn through the chat template: RunSpec.prompt_encoding)
 * or a message list (always through the chat template); a completion is text: a conversational completion is
 * exactly one assistant message. Every problem is an
 * ArtifactError ('format') naming `file:line` (or `file:row N`), the field, and how to fix it.
 */

/** One chat turn ({"role", "content"}), as in TRL's conversational forms and Hugging Face chat templates. */
export interface DataMessage {
  role: string;
  content: string;
}

/** A prompt: text (standard form) or a conversation ending where the assistant answers (conversational form). */
export type DataPrompt = string | DataMessage[];

/** Which of TRL's forms a record was in. */
export interface DataForm {
  conversational: boolean;
  /** Preference records only: the prompt was the common prefix of chosen and rejected. */
  implicitPrompt: boolean;
}

export interface NormalisedPair {
  prompt: DataPrompt;
  chosen: string;
  rejected: string;
  form: DataForm;
}

export interface NormalisedPrompt {
  prompt: DataPrompt;
  form: DataForm;
}

type Fields = Record<string, unknown>;

function fail(where: string, field: string, reason: string): never {
  throw new ArtifactError('format', `${where}: "${field}" ${reason}`);
}

function asObject(value: unknown, where: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ArtifactError('format', `${where}: must be a JSON object`);
  return value as Fields;
}

/**
 * Blank as the trainer sees it: only whitespace by JavaScript's \s or by Python's str.isspace, which also counts the
 * separators U+001C-U+001F and U+0085. The judge drops a pair with a blank response, and a data file with a blank
 * field is refused here, so nothing reaches LEARN that the trainer would refuse as empty.
 */
export function isBlank(text: string): boolean {
  return /^[\s\u001c-\u001f\u0085]*$/u.test(text);
}

function nonEmptyString(value: unknown, where: string, field: string): string {
  if (typeof value !== 'string' || isBlank(value)) fail(where, field, 'must be a non-empty string');
  return value;
}

/** A conversational field: a non-empty list of {"role", "content"} with string values (other keys are ignored). */
function messages(value: unknown, where: string, field: string): DataMessage[] {
  if (!Array.isArray(value) || value.length === 0) fail(where, field, 'must be a non-empty list of {"role", "content"} messages');
  return value.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(where, `${field}[${i}]`, 'must be a {"role", "content"} message');
    const { role, content } = m as Fields;
    if (typeof role !== 'string' || role === '') fail(where, `${field}[${i}].role`, 'must be a non-empty string ("system", "user" or "assistant")');
    if (typeof content !== 'string') fail(where, `${field}[${i}].content`, 'must be a string');
    return { role, content };
  });
}

/** A conversational completion: exactly one assistant message, whose content is the response text. */
function completion(list: DataMessage[], where: string, field: string, offset = 0): string {
  if (list.length !== 1) {
    fail(where, field, `must hold exactly one assistant message after the prompt, got ${list.length} (put earlier turns in the prompt)`);
  }
  if (list[0].role !== 'assistant') fail(where, `${field}[${offset}].role`, `must be "assistant" (the completion), got "${list[0].role}"`);
  if (isBlank(list[0].content)) fail(where, `${field}[${offset}].content`, 'must be a non-empty string');
  return list[0].content;
}

const sameMessage = (a: DataMessage, b: DataMessage) => a.role === b.role && a.content === b.content;

function explicitPair(record: Fields, where: string): NormalisedPair {
  const { prompt, chosen, rejected } = record;
  if (typeof prompt === 'string') {
    if (Array.isArray(chosen) || Array.isArray(rejected)) {
      fail(where, Array.isArray(chosen) ? 'chosen' : 'rejected', 'is a message list but "prompt" is a string: use one form (all strings, or all message lists)');
    }
    return {
      prompt: nonEmptyString(prompt, where, 'prompt'),
      chosen: nonEmptyString(chosen, where, 'chosen'),
      rejected: nonEmptyString(rejected, where, 'rejected'),
      form: { conversational: false, implicitPrompt: false },
    };
  }
  if (!Array.isArray(prompt)) fail(where, 'prompt', 'must be a non-empty string or a list of {"role", "content"} messages');
  if (typeof chosen === 'string' && typeof rejected === 'string') {
    // The services' own labelled pairs (formats.proto LabelledPair): a conversational prompt, the responses as text.
    return {
      prompt: messages(prompt, where, 'prompt'),
      chosen: nonEmptyString(chosen, where, 'chosen'),
      rejected: nonEmptyString(rejected, where, 'rejected'),
      form: { conversational: true, implicitPrompt: false },
    };
  }
  for (const field of ['chosen', 'rejected'] as const) {
    if (!Array.isArray(record[field])) fail(where, field, 'must be a list of messages (one assistant message) when "prompt" is a message list');
  }
  return {
    prompt: messages(prompt, where, 'prompt'),
    chosen: completion(messages(chosen, where, 'chosen'), where, 'chosen'),
    rejected: completion(messages(rejected, where, 'rejected'), where, 'rejected'),
    form: { conversational: true, implicitPrompt: false },
  };
}

/** Implicit prompt, standard: the common prefix of the two texts, less a space it ends in (that space starts both completions). */
function implicitTextPair(chosen: string, rejected: string, where: string): NormalisedPair {
  let end = 0;
  while (end < chosen.length && end < rejected.length && chosen[end] === rejected[end]) end += 1;
  if (end > 0 && chosen[end - 1] === ' ') end -= 1;
  if (isBlank(chosen.slice(0, end))) {
    fail(where, 'prompt', 'is missing and "chosen" and "rejected" share no prefix to take it from: add a "prompt" field');
  }
  const pair = { prompt: chosen.slice(0, end), chosen: chosen.slice(end), rejected: rejected.slice(end) };
  for (const field of ['chosen', 'rejected'] as const) {
    if (isBlank(pair[field])) fail(where, field, 'has no completion after the prompt the two share (one is a prefix of the other): add a "prompt" field');
  }
  return { ...pair, form: { conversational: false, implicitPrompt: true } };
}

/** Implicit prompt, conversational: the messages both lists start with; each then ends in one assistant message. */
function implicitConversationPair(record: Fields, where: string): NormalisedPair {
  const chosen = messages(record.chosen, where, 'chosen');
  const rejected = messages(record.rejected, where, 'rejected');
  let shared = 0;
  while (shared < chosen.length && shared < rejected.length && sameMessage(chosen[shared], rejected[shared])) shared += 1;
  if (shared === 0) fail(where, 'prompt', 'is missing and "chosen" and "rejected" share no leading messages to take it from: add a "prompt" field');
  return {
    prompt: chosen.slice(0, shared),
    chosen: completion(chosen.slice(shared), where, 'chosen', shared),
    rejected: completion(rejected.slice(shared), where, 'rejected', shared),
    form: { conversational: true, implicitPrompt: true },
  };
}

/**
 * A preference record in any of TRL's preference forms (explicit or implicit prompt, standard or conversational).
 * A pair whose two responses are identical carries no preference and is refused (the trainer refuses it too).
 */
export function normalisePair(value: unknown, where: string): NormalisedPair {
  const record = asObject(value, where);
  let pair: NormalisedPair;
  if (record.prompt !== undefined && record.prompt !== null) pair = explicitPair(record, where);
  else if (Array.isArray(record.chosen) || Array.isArray(record.rejected)) pair = implicitConversationPair(record, where);
  else pair = implicitTextPair(nonEmptyString(record.chosen, where, 'chosen'), nonEmptyString(record.rejected, where, 'rejected'), where);
  if (pair.chosen === pair.rejected) fail(where, 'rejected', 'is identical to "chosen" (the pair carries no preference)');
  return pair;
}

/**
 * A prompt-only record: {"prompt": text} or {"prompt": [messages]}. A conversation is TRL's conversational prompt:
 * system, user and assistant turns in any number, ending with a user turn (the one the model answers).
 */
export function normalisePrompt(value: unknown, where: string): NormalisedPrompt {
  const record = asObject(value, where);
  if (Array.isArray(record.prompt)) return { prompt: conversationalPrompt(messages(record.prompt, where, 'prompt'), where), form: { conversational: true, implicitPrompt: false } };
  if (record.prompt === undefined && record.messages !== undefined) {
    fail(where, 'prompt', 'is missing: a prompt-only record is {"prompt": text} or {"prompt": [messages]}, not {"messages"} (that is SFT data)');
  }
  return { prompt: nonEmptyString(record.prompt, where, 'prompt'), form: { conversational: false, implicitPrompt: false } };
}

const PROMPT_ROLES = new Set(['system', 'user', 'assistant']);

/** A conversational prompt: roles system, user or assistant, the last turn the user's and not empty. */
function conversationalPrompt(list: DataMessage[], where: string): DataMessage[] {
  list.forEach((m, i) => {
    if (!PROMPT_ROLES.has(m.role)) fail(where, `prompt[${i}].role`, `must be "system", "user" or "assistant", got "${m.role}"`);
  });
  const last = list.length - 1;
  if (list[last].role !== 'user') {
    fail(where, `prompt[${last}].role`, `must be "user": a prompt ends with the user's turn, which the model answers, got "${list[last].role}" (drop the trailing turn, or put it in a preference pair's completion)`);
  }
  if (isBlank(list[last].content)) fail(where, `prompt[${last}].content`, 'must be a non-empty string (the user turn the model answers)');
  return list;
}

/**
 * The text a rule or a judging question reads of a prompt: a string as it is, a conversation's last user turn (the
 * question the responses answer).
 */
export function promptText(prompt: DataPrompt): string {
  if (typeof prompt === 'string') return prompt;
  for (let i = prompt.length - 1; i >= 0; i--) if (prompt[i].role === 'user') return prompt[i].content;
  return '';
}

/** Whether two prompts are the same model input: the same text, or the same conversation turn for turn. */
export function samePrompt(a: unknown, b: DataPrompt): boolean {
  if (typeof b === 'string') return a === b;
  return Array.isArray(a) && a.length === b.length && a.every((m, i) => sameMessage(m as DataMessage, b[i]));
}

/**
 * A key for comparing prompts across forms, for repeats and overlaps: the text of a string prompt or of a
 * conversation that is one user turn (the same question either way), else the conversation as JSON.
 */
export function promptKey(prompt: DataPrompt): string {
  if (typeof prompt === 'string') return prompt;
  if (prompt.length === 1 && prompt[0].role === 'user') return prompt[0].content;
  return JSON.stringify(prompt.map((m) => [m.role, m.content]));
}

/**
 * A pair in TRL's explicit-prompt form, as the services write it (label noise, seed replay): standard when the prompt
 * is text, conversational (prompt messages, one assistant message per completion) when it is a conversation.
 */
export function explicitPairRecord(pair: { prompt: DataPrompt; chosen: string; rejected: string }): Fields {
  if (typeof pair.prompt === 'string') return { prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected };
  return {
    prompt: pair.prompt,
    chosen: [{ role: 'assistant', content: pair.chosen }],
    rejected: [{ role: 'assistant', content: pair.rejected }],
  };
}
