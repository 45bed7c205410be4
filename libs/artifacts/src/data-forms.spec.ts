/**
 * Every TRL dataset form the services read (examples/data/README.md), through the real reader: each example file of
 * examples/data, JSONL and its committed Parquet twin, read by readDataRecords and normalised; then malformed records,
 * whose errors name file:line (or file:row N), the field and the fix.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactError, promptText, normalisePair, normalisePrompt, promptKey, readDataRecords, type NormalisedPair, type NormalisedPrompt } from './index';

const DATA = path.resolve(__dirname, '../../../examples/data');
const user = (content: string) => ({ role: 'user', content });
const system = (content: string) => ({ role: 'system', content });

async function pairsOf(file: string): Promise<NormalisedPair[]> {
  const out: NormalisedPair[] = [];
  for await (const { where, value } of readDataRecords(file)) out.push(normalisePair(value, where));
  return out;
}

async function promptsOf(file: string): Promise<NormalisedPrompt[]> {
  const out: NormalisedPrompt[] = [];
  for await (const { where, value } of readDataRecords(file)) out.push(normalisePrompt(value, where));
  return out;
}

const LONG_ADD = 'Let me think. It is 5, I believe.';
const LONG_COLOUR = 'Colours are complicated; one of them is red.';

describe.each(['jsonl', 'parquet'])('examples/data in %s', (ext) => {
  const file = (name: string) => path.join(DATA, `${name}.${ext}`);

  test('preference, standard, explicit prompt: {prompt, chosen, rejected} strings, as they are', async () => {
    expect(await pairsOf(file('preference-standard'))).toEqual([
      { prompt: 'What is 2 + 3? Answer briefly.', chosen: '5.', rejected: LONG_ADD, form: { conversational: false, implicitPrompt: false } },
      { prompt: 'Name a primary colour.', chosen: 'Red.', rejected: LONG_COLOUR, form: { conversational: false, implicitPrompt: false } },
    ]);
  });

  test('preference, conversational, explicit prompt: the prompt messages, each completion the assistant message', async () => {
    expect(await pairsOf(file('preference-conversational'))).toEqual([
      { prompt: [user('What is 2 + 3? Answer briefly.')], chosen: '5.', rejected: LONG_ADD, form: { conversational: true, implicitPrompt: false } },
      {
        prompt: [system('You answer in one word.'), user('Name a primary colour.')],
        chosen: 'Red.',
        rejected: LONG_COLOUR,
        form: { conversational: true, implicitPrompt: false },
      },
    ]);
  });

  test('preference, standard, implicit prompt: the common prefix is the prompt, the space before the split starts the completions', async () => {
    expect(await pairsOf(file('preference-implicit-standard'))).toEqual([
      { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.', form: { conversational: false, implicitPrompt: true } },
      { prompt: '2 + 3 =', chosen: ' 5', rejected: ' 6', form: { conversational: false, implicitPrompt: true } },
    ]);
  });

  test('preference, conversational, implicit prompt: the shared leading messages are the prompt', async () => {
    const pairs = await pairsOf(file('preference-implicit-conversational'));
    expect(pairs).toEqual([
      { prompt: [user('What is 2 + 3? Answer briefly.')], chosen: '5.', rejected: LONG_ADD, form: { conversational: true, implicitPrompt: true } },
      {
        prompt: [system('You answer in one word.'), user('Name a primary colour.')],
        chosen: 'Red.',
        rejected: LONG_COLOUR,
        form: { conversational: true, implicitPrompt: true },
      },
    ]);
    // The same pairs as the explicit conversational file: the forms are two spellings of one record.
    expect(pairs.map(({ prompt, chosen, rejected }) => ({ prompt, chosen, rejected }))).toEqual(
      (await pairsOf(file('preference-conversational'))).map(({ prompt, chosen, rejected }) => ({ prompt, chosen, rejected })),
    );
  });

  test('prompt-only, standard and conversational; a one-user-turn conversation keys like its text', async () => {
    const standard = await promptsOf(file('prompts-standard'));
    const conversational = await promptsOf(file('prompts-conversational'));
    expect(standard.map((p) => p.prompt)).toEqual(['What is 7 * 6? Answer briefly.', 'Name a planet.']);
    expect(conversational.map((p) => p.prompt)).toEqual([[user('What is 7 * 6? Answer briefly.')], [user('Name a planet.')]]);
    expect(conversational.map((p) => promptKey(p.prompt))).toEqual(standard.map((p) => promptKey(p.prompt)));
  });

  test('prompt-only, multi-turn conversational: system, user and assistant turns ending with a user turn, kept whole', async () => {
    const prompts = await promptsOf(file('prompts-multi-turn'));
    expect(prompts.map((p) => p.prompt)).toEqual([
      [system('You answer in one word.'), user('Name a planet.'), { role: 'assistant', content: 'Mars.' }, user('Another one?')],
      [user('What is 7 * 6?'), { role: 'assistant', content: '42.' }, user('And 7 * 7?')],
    ]);
    expect(prompts.every((p) => p.form.conversational)).toBe(true);
    // Rules and the LLM-as-judge question read the last user turn; repeats are keyed by the whole conversation.
    expect(prompts.map((p) => promptText(p.prompt))).toEqual(['Another one?', 'And 7 * 7?']);
    expect(new Set(prompts.map((p) => promptKey(p.prompt))).size).toBe(2);
  });
});

describe('malformed records name file:line (or file:row N), the field and the fix', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'data-forms-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function errorOf(lines: unknown[], read: (file: string) => Promise<unknown> = pairsOf): Promise<string> {
    const file = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
    const error = await read(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ArtifactError);
    return (error as ArtifactError).message.replace(dir, '<dir>');
  }

  const good = { prompt: 'p', chosen: 'a', rejected: 'b' };
  test.each<[string, unknown, string]>([
    ['mixed forms', { prompt: 'p', chosen: [{ role: 'assistant', content: 'a' }], rejected: 'b' }, '"chosen" is a message list but "prompt" is a string'],
    ['a message without a role', { prompt: [{ content: 'hi' }], chosen: [{ role: 'assistant', content: 'a' }], rejected: [{ role: 'assistant', content: 'b' }] }, '"prompt[0].role" must be a non-empty string'],
    ['a completion by the user', { prompt: [user('hi')], chosen: [user('a')], rejected: [{ role: 'assistant', content: 'b' }] }, '"chosen[0].role" must be "assistant" (the completion), got "user"'],
    ['two completion turns', { prompt: [user('hi')], chosen: [{ role: 'assistant', content: 'a' }, user('more')], rejected: [{ role: 'assistant', content: 'b' }] }, '"chosen" must hold exactly one assistant message after the prompt, got 2 (put earlier turns in the prompt)'],
    ['implicit, nothing shared', { chosen: 'yes', rejected: 'no' }, '"prompt" is missing and "chosen" and "rejected" share no prefix to take it from: add a "prompt" field'],
    ['implicit conversational, nothing shared', { chosen: [user('a'), { role: 'assistant', content: 'x' }], rejected: [user('b'), { role: 'assistant', content: 'y' }] }, '"prompt" is missing and "chosen" and "rejected" share no leading messages'],
    ['implicit, one side a prefix of the other', { chosen: 'The sky is blue', rejected: 'The sky is blue today' }, '"chosen" has no completion after the prompt the two share'],
    ['identical responses', { prompt: [user('hi')], chosen: [{ role: 'assistant', content: 'a' }], rejected: [{ role: 'assistant', content: 'a' }] }, '"rejected" is identical to "chosen"'],
    ['a rejected response the trainer strips to nothing', { prompt: 'p', chosen: 'a', rejected: '\u001f ' }, '"rejected" must be a non-empty string'],
    ['an assistant turn of separators only', { prompt: [user('hi')], chosen: [{ role: 'assistant', content: '\u0085' }], rejected: [{ role: 'assistant', content: 'b' }] }, '"chosen[0].content" must be a non-empty string'],
    ['a number for a prompt', { prompt: 7, chosen: 'a', rejected: 'b' }, '"prompt" must be a non-empty string or a list of {"role", "content"} messages'],
  ])('pair: %s', async (_, record, message) => {
    const expected = `<dir>/bad.jsonl:3: ${message}`;
    expect((await errorOf([good, '', record])).slice(0, expected.length)).toBe(expected);
  });

  test('a labelled pair of the services: a conversational prompt with text responses', async () => {
    const file = path.join(dir, 'labelled.jsonl');
    fs.writeFileSync(file, JSON.stringify({ prompt: [system('s'), user('q')], chosen: 'a', rejected: 'b', method: 'rule' }) + '\n');
    expect(await pairsOf(file)).toEqual([{ prompt: [system('s'), user('q')], chosen: 'a', rejected: 'b', form: { conversational: true, implicitPrompt: false } }]);
  });

  test.each<[string, unknown, string]>([
    ['ends with the assistant', [user('q'), { role: 'assistant', content: 'a' }], '"prompt[1].role" must be "user": a prompt ends with the user\'s turn'],
    ['has a tool turn', [{ role: 'tool', content: 'x' }, user('q')], '"prompt[0].role" must be "system", "user" or "assistant", got "tool"'],
    ['ends with an empty user turn', [user('q'), { role: 'assistant', content: 'a' }, user('')], '"prompt[2].content" must be a non-empty string (the user turn the model answers)'],
  ])('prompt: a conversation that %s is refused naming the turn', async (_, prompt, message) => {
    const expected = `<dir>/bad.jsonl:2: ${message}`;
    expect((await errorOf([{ prompt: 'ok' }, { prompt }], promptsOf)).slice(0, expected.length)).toBe(expected);
  });

  test('prompt: {"messages"} is SFT data, not a prompt set; an empty conversation is refused', async () => {
    expect(await errorOf([{ prompt: 'ok' }, { messages: [user('hi')] }], promptsOf)).toBe(
      '<dir>/bad.jsonl:2: "prompt" is missing: a prompt-only record is {"prompt": text} or {"prompt": [messages]}, not {"messages"} (that is SFT data)',
    );
    expect(await errorOf([{ prompt: [] }], promptsOf)).toBe('<dir>/bad.jsonl:1: "prompt" must be a non-empty list of {"role", "content"} messages');
  });

  test('a Parquet row is named by its row number; a file that is not Parquet is a format error naming it', async () => {
    const parquet = path.join(dir, 'rows.parquet');
    fs.copyFileSync(path.join(DATA, 'preference-implicit-standard.parquet'), parquet);
    // Row 1 read as a prompt-only record: it has no "prompt".
    await expect(promptsOf(parquet)).rejects.toThrow(`${parquet}:row 1: "prompt" must be a non-empty string`);
    const fake = path.join(dir, 'fake.parquet');
    fs.writeFileSync(fake, '{"prompt": "this is JSONL"}\n');
    await expect(promptsOf(fake)).rejects.toThrow(new RegExp(`^${fake.replace(/[.]/g, '\\.')}: not a readable Parquet file .*; write it with pyarrow or pandas, or use JSONL$`));
  });
});
