/**
 * The generator's prompt-set reader on TRL's prompt-only forms (examples/data/README.md), JSONL and Parquet: a
 * standard prompt stays text, a conversational one stays a conversation (one user turn, or several system, user and
 * assistant turns ending with a user turn), ids and positions kept; a conversation that does not end with a user
 * turn is INVALID_ARGUMENT on prompt_set naming file:line and the field.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileUri, sha256File } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { loadPromptSet } from './prompts';

const DATA = path.resolve(__dirname, '../../../../examples/data');
const artifact = async (file: string) => ({ kind: 'artifact' as const, uri: fileUri(file), sha256: await sha256File(file) });
const where = (name: string, line: number) => `${path.join(DATA, name)}:${name.endsWith('.parquet') ? `row ${line}` : line}`;

test.each(['jsonl', 'parquet'])('prompts-standard.%s: the prompts as text, with their ids and positions in the set', async (ext) => {
  const name = `prompts-standard.${ext}`;
  const set = await loadPromptSet(await artifact(path.join(DATA, name)), { index: 1, count: 2 });
  expect(set.total).toBe(2);
  expect(set.prompts).toEqual([{ index: 1, prompt: 'Name a planet.', id: 'p-2' }]);
  expect(set.fieldOf(1)).toBe(`prompt_set (${where(name, 2)})`);
});

test.each(['jsonl', 'parquet'])('prompts-conversational.%s: a one-turn conversation stays a conversation (it is rendered with the template)', async (ext) => {
  const set = await loadPromptSet(await artifact(path.join(DATA, `prompts-conversational.${ext}`)), { index: 1, count: 2 });
  expect(set.prompts).toEqual([{ index: 1, prompt: [{ role: 'user', content: 'Name a planet.' }], id: 'p-2' }]);
});

test.each(['jsonl', 'parquet'])('prompts-multi-turn.%s: system, user and assistant turns ending with a user turn, every turn kept', async (ext) => {
  const set = await loadPromptSet(await artifact(path.join(DATA, `prompts-multi-turn.${ext}`)), { index: 0, count: 1 });
  expect(set.total).toBe(2);
  expect(set.prompts[0]).toEqual({
    index: 0,
    id: 'm-1',
    prompt: [
      { role: 'system', content: 'You answer in one word.' },
      { role: 'user', content: 'Name a planet.' },
      { role: 'assistant', content: 'Mars.' },
      { role: 'user', content: 'Another one?' },
    ],
  });
  expect(set.prompts[1].prompt).toHaveLength(3);
});

test.each([
  ['ends with the assistant', [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], '"prompt[1].role" must be "user"'],
  ['has an unknown role', [{ role: 'tool', content: 'x' }, { role: 'user', content: 'q' }], '"prompt[0].role" must be "system", "user" or "assistant", got "tool"'],
  ['ends with an empty user turn', [{ role: 'system', content: 's' }, { role: 'user', content: ' ' }], '"prompt[1].content" must be a non-empty string'],
])('a conversation that %s is INVALID_ARGUMENT on prompt_set naming file:line and the field', async (_, prompt, reason) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-forms-'));
  try {
    const file = path.join(dir, 'multi.jsonl');
    fs.writeFileSync(file, [JSON.stringify({ prompt: 'ok' }), JSON.stringify({ prompt })].join('\n') + '\n');
    const error = await loadPromptSet(await artifact(file), { index: 0, count: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ field: 'prompt_set', reason: expect.stringContaining(`${file}:2: ${reason}`) });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
