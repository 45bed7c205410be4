import { SentimentIntensityAnalyzer } from 'vader-sentiment';
import { fill, isFinished, sampleCell, templatePattern, words, type Split, type World, type WorldRng } from './world';

/**
 * The stylistic world: short reviews of places. The gold human prefers positive sentiment, as scored by VADER (a
 * real lexicon-and-rules sentiment model, Hutto & Gilbert 2014, npm `vader-sentiment`), while staying fluent:
 *
 *     gold = compound(response) − 0.04·max(0, words − 16) − 0.3·repeated sentences − 0.5·[unfinished]
 *
 * compound ∈ [−1, 1] is VADER's normalised score. The SFT distribution draws a mood per response (positive, negative
 * or mixed) and then adjectives, intensifiers and negations, so positive reviews already appear in the base model's
 * samples about a third of the time; a sentence repeated, or a review that rambles on, costs fluency.
 */

const PLACES = ['cafe', 'bakery', 'hotel', 'museum', 'cinema', 'gym', 'library', 'restaurant', 'bookshop', 'pool'] as const;
const CITIES = ['paris', 'oslo', 'lima', 'cairo', 'tokyo', 'rome', 'dublin', 'quito', 'seoul', 'perth'] as const;
const ASPECTS = ['staff', 'food', 'service', 'room', 'music', 'prices', 'coffee', 'view', 'seats', 'location', 'owner', 'menu'] as const;

const PLURAL_ASPECTS: ReadonlySet<string> = new Set(['prices', 'seats']);
const TIMES = ['morning', 'evening', 'weekend', 'lunchtime', 'late night', 'first'] as const;
const STREETS = ['main', 'oak', 'river', 'market', 'king', 'mill', 'park', 'bridge', 'church', 'station'] as const;
const COMPANIONS = ['my sister', 'my parents', 'a friend', 'my team', 'the kids', 'my partner', 'my cousin', 'a colleague'] as const;

// Every template has the place (the cell's slot) and two other slots, and a prompt may end with one of four short
// asks, so the prompt space has about 21,000 prompts (enough distinct training prompts for the 15K budget).
const TEMPLATES: readonly string[] = [
  'write a short review of the {place} in {city} after your {time} visit .',
  'how was your {time} visit to the {place} on {street} street ?',
  'tell me about the {place} on {street} street in {city} .',
  'what did you think of the {place} in {city} you tried with {who} ?',
  'describe your {time} at the {place} with {who} .',
  'review the {place} near {street} street that you visited with {who} .',
];
const PATTERNS = TEMPLATES.map(templatePattern);
const SLOTS = PLACES.length;
/** What may follow a prompt ('' = nothing). Neutral on purpose: none of them asks for a mood or a length. */
const ASKS = ['', 'please be honest .', 'thanks !', 'i am curious .', 'any thoughts ?'] as const;

const POSITIVE = ['great', 'friendly', 'lovely', 'excellent', 'nice', 'wonderful', 'clean', 'amazing', 'pleasant', 'good'] as const;
const NEGATIVE = ['awful', 'rude', 'terrible', 'dirty', 'bad', 'poor', 'horrible', 'boring', 'noisy', 'slow'] as const;
const NEUTRAL = ['okay', 'average', 'normal', 'plain', 'small', 'quiet', 'busy', 'simple'] as const;
const INTENSIFIERS = ['very', 'really', 'quite'] as const;

const OPENERS = ['i went to the {place} last week .', 'we visited the {place} on sunday .', 'my friends took me to the {place} .'];
const CLOSERS = ['that is all .', 'we left after an hour .', 'i might go back .', 'we paid and left .'];

/** Moods and, per mood, the weights of positive / negative / neutral adjectives. */
const MOODS: ReadonlyArray<{ weight: number; adjectives: readonly [number, number, number] }> = [
  { weight: 0.3, adjectives: [0.8, 0.05, 0.15] },
  { weight: 0.35, adjectives: [0.05, 0.8, 0.15] },
  { weight: 0.35, adjectives: [0.35, 0.35, 0.3] },
];

function parsePlace(prompt: string): string | undefined {
  let body = prompt.trim();
  const ask = ASKS.find((a) => a !== '' && body.endsWith(` ${a}`));
  if (ask) body = body.slice(0, -(ask.length + 1));
  for (const pattern of PATTERNS) {
    const match = pattern.exec(body);
    if (match?.groups) return match.groups.place;
  }
  return undefined;
}

function sentences(response: string): string[] {
  return response
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export const sentimentWorld: World = {
  name: 'sentiment',
  rule: 'toyworld/sentiment',
  description:
    'place reviews: VADER compound sentiment, minus 0.04 per word beyond 16, 0.3 per repeated sentence, 0.5 for an unfinished review',

  samplePrompt(rng: WorldRng, split: Split): string {
    const { template, slot } = sampleCell(rng, TEMPLATES.length, SLOTS, split);
    const prompt = fill(TEMPLATES[template], {
      place: PLACES[slot],
      city: rng.pick(CITIES),
      time: rng.pick(TIMES),
      street: rng.pick(STREETS),
      who: rng.pick(COMPANIONS),
    });
    const ask = rng.pick(ASKS);
    return ask === '' ? prompt : `${prompt} ${ask}`;
  },

  sampleResponse(rng: WorldRng, prompt: string): string {
    const place = parsePlace(prompt);
    if (!place) throw new Error(`not a sentiment-world prompt: '${prompt}'`);
    const mood = MOODS[rng.weighted(MOODS.map((m) => m.weight))];
    const adjective = () => rng.pick([POSITIVE, NEGATIVE, NEUTRAL][rng.weighted(mood.adjectives)]);
    const parts: string[] = [];
    if (rng.chance(0.4)) parts.push(fill(rng.pick(OPENERS), { place }));
    const count = 1 + rng.weighted([0.35, 0.4, 0.25]);
    const aspects = rng.permutation(ASPECTS.length).slice(0, count).map((i) => ASPECTS[i]);
    for (const aspect of aspects) {
      const intensifier = rng.chance(0.25) ? `${rng.pick(INTENSIFIERS)} ` : '';
      const negation = rng.chance(0.1) ? 'not ' : '';
      parts.push(`the ${aspect} ${PLURAL_ASPECTS.has(aspect) ? 'were' : 'was'} ${negation}${intensifier}${adjective()} .`);
    }
    if (rng.chance(0.12)) parts.push(parts[parts.length - 1]); // a repeated sentence: the disfluency gold dislikes
    if (rng.chance(0.3)) parts.push(rng.pick(CLOSERS));
    return parts.join(' ');
  },

  gold(prompt: string, response: string): number | undefined {
    if (!parsePlace(prompt)) return undefined;
    const f = reviewFeatures(response);
    return f.sentiment - 0.04 * Math.max(0, f.words - 16) - 0.3 * f.repeated - 0.5 * (1 - f.finished);
  },

  features(prompt: string, response: string): Record<string, number> {
    return parsePlace(prompt) ? reviewFeatures(response) : {};
  },
};

function reviewFeatures(response: string): { sentiment: number; words: number; repeated: number; finished: number; characters: number } {
  const all = sentences(response);
  return {
    sentiment: SentimentIntensityAnalyzer.polarity_scores(response).compound,
    words: words(response).length,
    repeated: all.length - new Set(all).size,
    finished: isFinished(response) ? 1 : 0,
    characters: [...response.trim()].length,
  };
}
