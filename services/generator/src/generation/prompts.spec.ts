/**
 * The generator's prompt-set reader on TRL's prompt-only forms (examples/data/README.md): text and one-user-turn
 * conversations, JSONL and Parquet, give the same prompts (ids kept); a multi-turn conversation is INVALID_ARGUMENT on
 * prompt_set naming file:line and "prompt".
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileUri, sha256File } from '@alignment/artifacts';
import { InvalidArgumentError } from '@alignment/errors';
import { loadPromptSet } from './prompts';

const DATA = path.resolve(__dirname, '../../../../examples/data');
const artifact = async (file: string) => ({ kind: 'artifact' as const, uri: fileUri(file), sha256: await sha256File(file) });

test.each(['prompts-standard.jsonl', 'prompts-standard.parquet', 'prompts-conversational.jsonl', 'prompts-conversational.parquet'])(
  '%s: the prompts as text, with their ids and positions in the set',
  async (name) => {
    const set = await loadPromptSet(await artifact(path.join(DATA, name)), { index: 1, count: 2 });
    expect(set.total).toBe(2);
    expect(set.prompts).toEqual([{ index: 1, prompt: 'Name a planet.', id: 'p-2' }]);
    expect(set.fieldOf(1)).toBe(`prompt_set (${path.join(DATA, name)}:${name.endsWith('.parquet') ? 'row 2' : '2'})`);
  },
);

test('a multi-turn prompt is INVALID_ARGUMENT on prompt_set naming file:line and "prompt"', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-forms-'));
  try {
    const file = path.join(dir, 'multi.jsonl');
    fs.writeFileSync(file, [JSON.stringify({ prompt: 'ok' }), JSON.stringify({ prompt: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }] })].join('\n') + '\n');
    const error = await loadPromptSet(await artifact(file), { index: 0, count: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ field: 'prompt_set', reason: expect.stringContaining(`${file}:2: "prompt" is a conversation of 2 message(s)`) });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
