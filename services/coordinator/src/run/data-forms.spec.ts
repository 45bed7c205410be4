/**
 * The coordinator's readers on TRL's data forms (examples/data): seed pairs in every preference form, JSONL and
 * Parquet, read as the same pairs and rewritten (label noise, seed replay) in the explicit form of their kind; prompt
 * sets in both prompt-only forms, multi-turn conversations included; and the records a prompt set cannot carry,
 * refused naming file:line and the field.
 * The generator's reader: services/generator/src/generation/prompts.spec.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promptKey } from '@alignment/artifacts';
import { DataFormatError, readPairs, readPrompts } from './data';
import { flipLabels } from './label-noise';

const DATA = path.resolve(__dirname, '../../../../examples/data');
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coordinator-forms-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(['jsonl', 'parquet'])('seed pairs: the four preference forms in %s read as two sets of pairs', async (ext) => {
  const read = async (name: string) => (await readPairs(path.join(DATA, `${name}.${ext}`))).map(({ prompt, chosen, rejected }) => ({ prompt, chosen, rejected }));
  const conversational = await read('preference-conversational');
  expect(await read('preference-implicit-conversational')).toEqual(conversational);
  expect(conversational[0]).toEqual({ prompt: [user('What is 2 + 3? Answer briefly.')], chosen: '5.', rejected: 'Let me think. It is 5, I believe.' });
  // A one-user-turn conversation and its text are the same prompt to the round-prompt overlap checks.
  expect(promptKey(conversational[0].prompt)).toBe((await read('preference-standard'))[0].prompt);
  expect((await read('preference-implicit-standard'))[0]).toEqual({ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' });
});

test('seed pairs are rewritten in the explicit form of their kind, so label noise swaps whole completions', async () => {
  const pairs = await readPairs(path.join(DATA, 'preference-implicit-conversational.parquet'));
  expect(pairs[1].value).toEqual({
    prompt: [{ role: 'system', content: 'You answer in one word.' }, user('Name a primary colour.')],
    chosen: [assistant('Red.')],
    rejected: [assistant('Colours are complicated; one of them is red.')],
  });
  const noisy = flipLabels(
    pairs.map((p) => p.value),
    0.49,
    7,
  );
  expect(noisy.flipped).toHaveLength(1);
  const flipped = noisy.pairs[noisy.flipped[0]];
  const original = pairs[noisy.flipped[0]].value;
  expect(flipped).toEqual({ prompt: original.prompt, chosen: original.rejected, rejected: original.chosen });
  // Text pairs stay text; extra keys (ids, scores) are kept.
  const file = path.join(dir, 'scored.jsonl');
  fs.writeFileSync(file, JSON.stringify({ chosen: 'The sky is blue.', rejected: 'The sky is green.', chosen_score: 1 }) + '\n');
  expect((await readPairs(file))[0].value).toEqual({ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.', chosen_score: 1 });
});

test.each(['jsonl', 'parquet'])('prompt sets in both prompt-only forms (%s): text stays text, a conversation stays a conversation', async (ext) => {
  const standard = await readPrompts(path.join(DATA, `prompts-standard.${ext}`));
  expect(standard.map((p) => p.value)).toEqual([
    { id: 'p-1', prompt: 'What is 7 * 6? Answer briefly.' },
    { id: 'p-2', prompt: 'Name a planet.' },
  ]);
  const conversational = await readPrompts(path.join(DATA, `prompts-conversational.${ext}`));
  expect(conversational.map((p) => p.value)).toEqual([
    { id: 'p-1', prompt: [user('What is 7 * 6? Answer briefly.')] },
    { id: 'p-2', prompt: [user('Name a planet.')] },
  ]);
  // The same question either way to the overlap checks (a repeat is a repeat), though encoded differently.
  expect(conversational.map((p) => promptKey(p.prompt))).toEqual(standard.map((p) => p.prompt));
});

test.each(['jsonl', 'parquet'])('a multi-turn prompt set (%s) keeps every turn, ending with the user turn the model answers', async (ext) => {
  const prompts = await readPrompts(path.join(DATA, `prompts-multi-turn.${ext}`));
  expect(prompts.map((p) => p.prompt)).toEqual([
    [{ role: 'system', content: 'You answer in one word.' }, user('Name a planet.'), assistant('Mars.'), user('Another one?')],
    [user('What is 7 * 6?'), assistant('42.'), user('And 7 * 7?')],
  ]);
  expect(prompts[1].where).toBe(`${path.join(DATA, `prompts-multi-turn.${ext}`)}:${ext === 'parquet' ? 'row 2' : '2'}`);
});

test('a prompt-set conversation that does not end with a user turn is refused naming file:line and the field', async () => {
  const file = path.join(dir, 'multi.jsonl');
  fs.writeFileSync(file, [JSON.stringify({ prompt: 'ok' }), JSON.stringify({ prompt: [{ role: 'system', content: 's' }, user('q'), assistant('a')] })].join('\n') + '\n');
  const coordinator = await readPrompts(file).catch((e: unknown) => e);
  expect(coordinator).toBeInstanceOf(DataFormatError);
  expect((coordinator as Error).message).toBe(
    `${file}:2: "prompt[2].role" must be "user": a prompt ends with the user's turn, which the model answers, got "assistant" (drop the trailing turn, or put it in a preference pair's completion)`,
  );
});
