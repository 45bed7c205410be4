import { fill, isFinished, sampleCell, templatePattern, words, type Split, type World, type WorldRng } from './world';

/**
 * The instruction-following world: requests for a list of a given number of things of one kind ("name three
 * fruits for my party ."). The gold human wants exactly what was asked, and nothing more:
 *
 *     gold = 1·[items = n] + 0.5·[every item is of the asked kind] − 0.05·extra words − 0.004·characters
 *            − 0.3·[an item repeated] − 0.5·[unfinished]
 *
 * An item is any word of one of the world's ten kinds (fruits, colours, …); extra words are the words that are
 * neither items nor the list's glue (",", "and", "."). So the count dominates, then staying on the asked kind, then
 * saying nothing beyond the list, and among equally good lists the shorter one wins (so two samples rarely tie).
 *
 * It differs in kind from the other two worlds: what the gold human rewards is obedience to the literal request
 * (how many, of what, no chatter), not correctness of a computation or a tone. It is the world where a judge that has
 * learned "more content is better" goes wrong (docs/benchmark.md §4: in a third world the judge preferred the response
 * that added content beyond the request in 96 of 101 pairs).
 *
 * The SFT distribution mixes five styles: the bare list (the preferred behaviour, about a fifth of the samples),
 * a chatty list wrapped in friendly sentences, a list followed by a comment, a miscounted list (one item too many or
 * too few) and a list with one item of the wrong kind. Every style is a choice the base model already makes.
 */

const KINDS: ReadonlyArray<{ name: string; items: readonly string[] }> = [
  { name: 'fruits', items: ['apple', 'pear', 'plum', 'mango', 'grape', 'lemon', 'peach', 'kiwi'] },
  { name: 'colours', items: ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'pink', 'brown'] },
  { name: 'animals', items: ['dog', 'cat', 'horse', 'rabbit', 'tiger', 'zebra', 'sheep', 'goat'] },
  { name: 'tools', items: ['hammer', 'saw', 'drill', 'wrench', 'chisel', 'pliers', 'ruler', 'spade'] },
  { name: 'drinks', items: ['tea', 'coffee', 'juice', 'milk', 'water', 'cocoa', 'soda', 'cider'] },
  { name: 'sports', items: ['tennis', 'football', 'golf', 'rugby', 'hockey', 'cricket', 'boxing', 'rowing'] },
  { name: 'vegetables', items: ['carrot', 'onion', 'potato', 'pea', 'leek', 'cabbage', 'turnip', 'bean'] },
  { name: 'instruments', items: ['piano', 'violin', 'guitar', 'drum', 'flute', 'harp', 'cello', 'trumpet'] },
  { name: 'birds', items: ['robin', 'crow', 'owl', 'eagle', 'swan', 'duck', 'parrot', 'sparrow'] },
  { name: 'flowers', items: ['rose', 'tulip', 'daisy', 'lily', 'iris', 'poppy', 'violet', 'orchid'] },
];
const KIND_OF_ITEM: ReadonlyMap<string, number> = new Map(KINDS.flatMap((k, i) => k.items.map((item) => [item, i] as const)));
const COUNTS = ['two', 'three', 'four', 'five'] as const;
const COUNT_VALUE: ReadonlyMap<string, number> = new Map(COUNTS.map((c, i) => [c, i + 2]));
const WHO = ['sister', 'class', 'team', 'parents', 'friend', 'neighbour', 'boss', 'cousin', 'uncle', 'aunt'] as const;
const OCCASIONS = ['party', 'picnic', 'quiz', 'lesson', 'story', 'game', 'poster', 'song', 'trip', 'market', 'fair', 'show'] as const;
const GLUE: ReadonlySet<string> = new Set([',', 'and', '.']);

// The kind is the cell's slot; every template also has the count, who and the occasion: 6 · 4 · 10 · 10 · 12 = 28,800
// prompts, about 23,000 of them in training cells (the 15K budget draws 15,000 distinct ones over three rounds).
const TEMPLATES: readonly string[] = [
  'list {n} {kind} for my {who} and our {occasion} .',
  'name {n} {kind} for a {occasion} with my {who} .',
  'my {who} needs {n} {kind} for a {occasion} . which ones ?',
  'can you suggest {n} {kind} for my {who} and our {occasion} ?',
  'give me {n} {kind} for the {occasion} with my {who} , just the names .',
  'for a {occasion} with my {who} , tell me {n} {kind} .',
];
const PATTERNS = TEMPLATES.map(templatePattern);

interface Request {
  n: number;
  kind: number;
  occasion?: string;
}

function parse(prompt: string): Request | undefined {
  for (const pattern of PATTERNS) {
    const match = pattern.exec(prompt.trim());
    if (!match?.groups) continue;
    const n = COUNT_VALUE.get(match.groups.n);
    const kind = KINDS.findIndex((k) => k.name === match.groups!.kind);
    if (n !== undefined && kind >= 0) return { n, kind, occasion: match.groups.occasion };
  }
  return undefined;
}

/** "a , b and c" (or "a and b" for two). */
function joinItems(items: readonly string[]): string {
  if (items.length === 1) return items[0];
  return `${items.slice(0, -1).join(' , ')} and ${items[items.length - 1]}`;
}

/**
 * `count` distinct items of a kind, in the kind's own order (apple before pear before plum): a list in a fixed order
 * is one a tiny model can write without repeating itself, so repeats stay a rare slip rather than a missing skill
 * (docs/benchmark.md §4, the pilot's lesson: preference learning barely moves skill failures).
 */
function drawItems(rng: WorldRng, kind: number, count: number): string[] {
  const items = KINDS[kind].items;
  return rng
    .permutation(items.length)
    .slice(0, count)
    .sort((a, b) => a - b)
    .map((i) => items[i]);
}

/** The five styles of the SFT corpus: each returns a response to the request. */
const STYLES: ReadonlyArray<{ weight: number; write: (rng: WorldRng, r: Request) => string }> = [
  // the bare list: exactly what was asked
  { weight: 0.22, write: (rng, r) => `${joinItems(drawItems(rng, r.kind, r.n))} .` },
  // chatty: the right list wrapped in friendly sentences
  {
    weight: 0.22,
    write: (rng, r) => {
      const list = joinItems(drawItems(rng, r.kind, r.n));
      const kind = KINDS[r.kind].name;
      return rng.pick([
        `sure ! here are ${COUNTS[r.n - 2]} ${kind} : ${list} . have fun !`,
        `great idea ! you could try ${list} . i hope it goes well !`,
        `of course . my favourite ${kind} are ${list} . enjoy !`,
      ]);
    },
  },
  // commented: the right list, then a remark
  {
    weight: 0.16,
    write: (rng, r) =>
      `${joinItems(drawItems(rng, r.kind, r.n))} . ${rng.pick(['they are all easy to find .', 'everyone knows these .', 'these are the usual ones .', `they suit a ${r.occasion ?? 'day'} well .`])}`,
  },
  // miscounted: one item too many or too few
  { weight: 0.22, write: (rng, r) => `${joinItems(drawItems(rng, r.kind, r.n + (r.n > 2 && rng.chance(0.5) ? -1 : 1)))} .` },
  // off-kind: one item of another kind slipped in
  {
    weight: 0.18,
    write: (rng, r) => {
      const items = drawItems(rng, r.kind, r.n);
      const other = (r.kind + 1 + rng.int(KINDS.length - 1)) % KINDS.length;
      items[rng.int(items.length)] = rng.pick(KINDS[other].items);
      return `${joinItems(items)} .`;
    },
  },
];

export const listingWorld: World = {
  name: 'listing',
  rule: 'toyworld/listing',
  description:
    'list requests: 1 for exactly the asked number of items, 0.5 for all of the asked kind, minus 0.05 per extra word, 0.004 per character, 0.3 for a repeat, 0.5 for an unfinished answer',

  samplePrompt(rng: WorldRng, split: Split): string {
    const { template, slot } = sampleCell(rng, TEMPLATES.length, KINDS.length, split);
    return fill(TEMPLATES[template], { n: rng.pick(COUNTS), kind: KINDS[slot].name, who: rng.pick(WHO), occasion: rng.pick(OCCASIONS) });
  },

  sampleResponse(rng: WorldRng, prompt: string): string {
    const request = parse(prompt);
    if (!request) throw new Error(`not a listing-world prompt: '${prompt}'`);
    return STYLES[rng.weighted(STYLES.map((s) => s.weight))].write(rng, request);
  },

  gold(prompt: string, response: string): number | undefined {
    const request = parse(prompt);
    if (!request) return undefined;
    const f = features(request, response);
    return f.count_right + 0.5 * f.on_kind - 0.05 * f.extra_words - 0.004 * f.characters - 0.3 * f.repeated - 0.5 * (1 - f.finished);
  },

  features(prompt: string, response: string): Record<string, number> {
    const request = parse(prompt);
    return request ? features(request, response) : {};
  },
};

function features(
  r: Request,
  response: string,
): { count_right: number; items: number; on_kind: number; extra_words: number; repeated: number; finished: number; words: number; characters: number } {
  const tokens = words(response);
  const items = tokens.filter((w) => KIND_OF_ITEM.has(w));
  return {
    count_right: items.length === r.n ? 1 : 0,
    items: items.length,
    on_kind: items.length > 0 && items.every((w) => KIND_OF_ITEM.get(w) === r.kind) ? 1 : 0,
    extra_words: tokens.filter((w) => !KIND_OF_ITEM.has(w) && !GLUE.has(w)).length,
    repeated: items.length - new Set(items).size > 0 ? 1 : 0,
    finished: isFinished(response) ? 1 : 0,
    words: tokens.length,
    characters: [...response.trim()].length,
  };
}
