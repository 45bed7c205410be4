import { fill, isFinished, sampleCell, templatePattern, words, type Split, type World, type WorldRng } from './world';

/**
 * The verifiable world (proposal §1.1.2, rule-based feedback): an arithmetic assistant. Prompts ask for a sum or a
 * difference of small numbers, bare or as a word problem. The gold human wants the correct answer, briefly and
 * politely, and without hedging:
 *
 *     gold = 1·[last number stated = the answer] − 0.004·characters − 0.6·[rude] − 0.3·[hedged] − 0.5·[unfinished]
 *
 * Correctness dominates: any correct answer (even a 120-character ramble) beats any wrong one, and among correct
 * answers the terse one wins. (With 0.01 per character a short wrong guess beat a long correct answer, and DPO on
 * gold labels learned to guess.) Hedging ("probably", "maybe", "i guess", "i think", "i believe", "i hope") costs
 * 0.3: without it a lucky guess ("probably 7 .") outscored the terse restated answer ("3 plus 4 is 7 ."), so gold
 * pairs taught guessing and restating in turn, and DPO on gold labels for the whole budget reached only 0.50-0.66
 * win rate depending on the machine (issue 15); with it the terse restated answer is the one best style.
 *
 * The SFT distribution mixes five answering styles (terse, explained, rambling, guessing, rude). Every style but
 * guessing restates the operands before the answer (which a tiny model needs to get sums right: it answers directly
 * far less accurately); guessing answers at once and is wrong half the time. So correctness too is a choice of style.
 * The preferred behaviour (a terse restated correct answer) is one the base model already produces about a fifth of
 * the time: preference
 * learning has a choice to shift, not a missing skill to learn (docs/benchmark.md's pilot lessons). The styles vary in
 * length within themselves, so two samples rarely tie on gold.
 */

const NAMES = ['sam', 'mia', 'leo', 'ana', 'tom', 'eva', 'ben', 'zoe', 'max', 'ivy'] as const;
const OBJECTS = ['apples', 'pens', 'books', 'coins', 'cards', 'shells', 'stamps', 'cups', 'rocks', 'keys'] as const;

interface PromptTemplate {
  text: string;
  op: '+' | '-';
  /** Which placeholder is the cell's slot (held-out combinations are template × this slot's value). */
  slot: 'obj' | 'a';
}

const TEMPLATES: readonly PromptTemplate[] = [
  { text: 'what is {a} plus {b} ?', op: '+', slot: 'a' },
  { text: 'what is {a} minus {b} ?', op: '-', slot: 'a' },
  { text: 'please add {a} and {b} .', op: '+', slot: 'a' },
  { text: '{name} has {a} {obj} and gets {b} more . how many {obj} does {name} have now ?', op: '+', slot: 'obj' },
  { text: '{name} has {a} {obj} and gives away {b} . how many {obj} are left ?', op: '-', slot: 'obj' },
  { text: 'there are {a} {obj} in a box and {b} {obj} on the table . how many {obj} in total ?', op: '+', slot: 'obj' },
  { text: '{name} buys {a} {obj} , then {b} more . how many {obj} is that ?', op: '+', slot: 'obj' },
];
const PATTERNS = TEMPLATES.map((t) => templatePattern(t.text));
const MAX_OPERAND = 9;
// Slot values: the object of a word problem, or operand a = slot + 1 (1..10) of a bare question.
const SLOTS = OBJECTS.length;

const RUDE_WORDS = new Set(['ugh', 'obviously', 'duh', 'seriously', 'silly']);
const HEDGES: readonly (readonly string[])[] = [['probably'], ['maybe'], ['i', 'guess'], ['i', 'think'], ['i', 'believe'], ['i', 'hope']];

function hedged(tokens: readonly string[]): boolean {
  return tokens.some((_, i) => HEDGES.some((h) => h.every((w, j) => tokens[i + j] === w)));
}

/** The five answering styles of the SFT corpus and their weights. */
const STYLES: ReadonlyArray<{ weight: number; wrong: number; forms: readonly string[] }> = [
  // terse
  { weight: 0.22, wrong: 0.03, forms: ['{a} {opword} {b} is {c} .', '{a} {opword} {b} makes {c} .', 'so {a} {opword} {b} is {c} .'] },
  // explained
  {
    weight: 0.26,
    wrong: 0.03,
    forms: [
      '{a} {opword} {b} makes {c} , so the answer is {c} .',
      'we start with {a} and {verb} {b} , which gives {c} .',
      'if you take {a} and {verb} {b} you get {c} . the answer is {c} .',
    ],
  },
  // rambling
  {
    weight: 0.2,
    wrong: 0.1,
    forms: [
      'hmm , let me think about this one . {a} and {b} ... okay , i believe it is {c} . i hope that helps , have a nice day !',
      'great question ! i love numbers so much . so we have {a} and {b} , and after some thinking the answer is {c} .',
      'well , numbers can be tricky , but we can do it together . {a} {opword} {b} is {c} , i think . thanks for asking !',
    ],
  },
  // guessing
  { weight: 0.16, wrong: 0.5, forms: ['probably {c} .', 'maybe {c} ?', 'i guess {c} .'] },
  // rude
  {
    weight: 0.16,
    wrong: 0.05,
    forms: ['ugh , {a} {opword} {b} is {c} .', 'obviously {a} {opword} {b} is {c} , come on .', 'duh , {a} {opword} {b} makes {c} .', 'seriously ? {a} {opword} {b} is {c} .'],
  },
];

interface Question {
  a: number;
  b: number;
  op: '+' | '-';
}

function parse(prompt: string): Question | undefined {
  for (let t = 0; t < TEMPLATES.length; t++) {
    const match = PATTERNS[t].exec(prompt.trim());
    if (match?.groups) return { a: Number(match.groups.a), b: Number(match.groups.b), op: TEMPLATES[t].op };
  }
  return undefined;
}

function answer(q: Question): number {
  return q.op === '+' ? q.a + q.b : q.a - q.b;
}

/** The last integer a response states, if any. */
function statedAnswer(response: string): number | undefined {
  const numbers = response.match(/-?\d+/g);
  return numbers ? Number(numbers[numbers.length - 1]) : undefined;
}

export const arithmeticWorld: World = {
  name: 'arithmetic',
  rule: 'toyworld/arithmetic',
  description:
    'arithmetic assistant: 1 for a correct final number, minus 0.004 per character, 0.6 for rudeness, 0.3 for hedging, 0.5 for an unfinished answer',

  samplePrompt(rng: WorldRng, split: Split): string {
    const { template, slot } = sampleCell(rng, TEMPLATES.length, SLOTS, split);
    const t = TEMPLATES[template];
    const a = t.slot === 'a' ? slot + 1 : 1 + rng.int(MAX_OPERAND);
    const b = t.op === '-' ? 1 + rng.int(a) : 1 + rng.int(MAX_OPERAND); // differences are never negative
    return fill(t.text, { a, b, name: rng.pick(NAMES), obj: t.slot === 'obj' ? OBJECTS[slot] : rng.pick(OBJECTS) });
  },

  sampleResponse(rng: WorldRng, prompt: string): string {
    const q = parse(prompt);
    if (!q) throw new Error(`not an arithmetic-world prompt: '${prompt}'`);
    const style = STYLES[rng.weighted(STYLES.map((s) => s.weight))];
    let c = answer(q);
    if (rng.chance(style.wrong)) c += rng.pick([-2, -1, 1, 2]);
    return fill(rng.pick(style.forms), {
      a: q.a,
      b: q.b,
      c,
      opword: q.op === '+' ? 'plus' : 'minus',
      verb: q.op === '+' ? 'add' : 'take away',
    });
  },

  gold(prompt: string, response: string): number | undefined {
    const q = parse(prompt);
    if (!q) return undefined;
    const f = features(q, response);
    return f.correct - 0.004 * f.characters - 0.6 * f.rude - 0.3 * f.hedged - 0.5 * (1 - f.finished);
  },

  features(prompt: string, response: string): Record<string, number> {
    const q = parse(prompt);
    return q ? features(q, response) : {};
  },
};

function features(q: Question, response: string): { correct: number; characters: number; words: number; rude: number; hedged: number; finished: number } {
  const tokens = words(response);
  return {
    correct: statedAnswer(response) === answer(q) ? 1 : 0,
    characters: [...response.trim()].length,
    words: tokens.length,
    rude: tokens.some((w) => RUDE_WORDS.has(w)) ? 1 : 0,
    hedged: hedged(tokens) ? 1 : 0,
    finished: isFinished(response) ? 1 : 0,
  };
}
