import { Xoshiro128StarStar } from '@alignment/random';

/**
 * A toy world of docs/benchmark.md: a prompt generator, the distribution the SFT corpus is drawn from, and the gold
 * annotator (the hidden human). The gold annotator is used only to label seed pairs and to evaluate; it reaches the
 * judge service as the `rule` judge named `rule`.
 *
 * Text is lower-case words and punctuation separated by single spaces, so a tiny tokenizer trained on the corpus
 * gives one token per word.
 */
export interface World {
  /** Short name used on the command line and in reports ("arithmetic", "sentiment"). */
  readonly name: string;
  /** The judge's rule name of the gold annotator ("toyworld/arithmetic"). */
  readonly rule: string;
  /** What the gold annotator wants, in one sentence (shown by the judge's rule listing and in reports). */
  readonly description: string;
  /**
   * Draws a prompt. Prompts are cells of (template, slot value); `train` never yields a held-out cell and `eval`
   * only yields held-out ones, so evaluation prompts are whole template/slot combinations unseen in training.
   */
  samplePrompt(rng: WorldRng, split: Split): string;
  /** Draws a response from the world's SFT distribution (what the base model learns to imitate). */
  sampleResponse(rng: WorldRng, prompt: string): string;
  /** The gold score of a response (higher is better); undefined when the prompt is not one of this world's. */
  gold(prompt: string, response: string): number | undefined;
  /**
   * Named features of a response the judge's systematic leanings are reported on (docs/benchmark.md: length, size and
   * any feature the world exposes), e.g. `correct` (0/1), `words`.
   */
  features(prompt: string, response: string): Record<string, number>;
}

export type Split = 'train' | 'eval';

/** The seeded generator worlds draw from (xoshiro128**, seeded from a number and a stream name). */
export class WorldRng extends Xoshiro128StarStar {
  constructor(seed: number, stream: string) {
    super(seedState(seed, stream));
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.nextDouble() < p;
  }

  /** An index drawn with the given (unnormalised) weights. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let u = this.nextDouble() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    return weights.length - 1;
  }
}

/** splitmix32 over an FNV-1a hash of the stream name mixed with the seed: four well-mixed state words. */
function seedState(seed: number, stream: string): number[] {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`a world seed is a non-negative integer, got ${seed}`);
  let h = 0x811c9dc5;
  for (const ch of `${stream}#${seed}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h = (h ^ Math.floor(seed / 2 ** 32)) >>> 0;
  const state: number[] = [];
  for (let i = 0; i < 4; i++) {
    h = (h + 0x9e3779b9) >>> 0;
    let z = h;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    state.push((z ^ (z >>> 16)) >>> 0);
  }
  return state;
}

/**
 * Prompt cells: template t with slot value s is held out for evaluation when (t + 2s) mod 5 = 0. Every template
 * and every slot value keeps most of its cells in training; a fifth of the combinations are seen only at evaluation.
 */
export function isHeldOut(template: number, slot: number): boolean {
  return (template + 2 * slot) % 5 === 0;
}

/** Draws (template, slot) indices of the requested split. */
export function sampleCell(rng: WorldRng, templates: number, slots: number, split: Split): { template: number; slot: number } {
  for (;;) {
    const template = rng.int(templates);
    const slot = rng.int(slots);
    if (isHeldOut(template, slot) === (split === 'eval')) return { template, slot };
  }
}

/** Words of a text (whitespace-separated tokens, punctuation included). */
export function words(text: string): string[] {
  return text.trim().split(/\s+/).filter((w) => w.length > 0);
}

/** Whether a response ends as a finished sentence (a sample cut off by max_new_tokens does not). */
export function isFinished(response: string): boolean {
  return /[.!?]$/.test(response.trim());
}

/** Fills `{name}` placeholders. */
export function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`template '${template}' needs a value for {${key}}`);
    return String(values[key]);
  });
}

/** A regular expression matching a template with its placeholders captured by name (one group per placeholder). */
export function templatePattern(template: string): RegExp {
  const escaped = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
  const seen = new Set<string>();
  const body = escaped.replace(/\{(\w+)\}/g, (_, key: string) => {
    if (seen.has(key)) return `\\k<${key}>`;
    seen.add(key);
    return `(?<${key}>[a-z0-9]+(?: [a-z0-9]+)*?)`;
  });
  return new RegExp(`^${body}$`);
}
