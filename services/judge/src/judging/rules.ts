/**
 * Programmatic verifiers for the `rule` judge (docs/algorithm.md §5: rule-based verifiers, e.g. arithmetic
 * correctness). A verifier scores one response to one prompt; higher is better. It returns undefined when it
 * cannot judge the prompt at all (e.g. an arithmetic checker given a prompt with no arithmetic in it): such a pair
 * is counted as invalid rather than as a tie.
 *
 * The toy worlds' gold annotators (libs/toyworld) are registered below under their `world.rule` names.
 */
import { WORLDS } from '@alignment/toyworld';

export type RuleVerifier = (prompt: string, response: string) => number | undefined;

export interface RuleInfo {
  name: string;
  description: string;
}

const registry = new Map<string, { description: string; verify: RuleVerifier }>();

/** Adds a verifier under a unique name ("family/name"); registering a name twice is a programming error. */
export function registerRule(name: string, description: string, verify: RuleVerifier): void {
  if (!/^[a-z0-9_-]+\/[a-z0-9_./-]+$/.test(name)) throw new Error(`rule names look like "family/name", got '${name}'`);
  if (registry.has(name)) throw new Error(`rule '${name}' is already registered`);
  registry.set(name, { description, verify });
}

export function getRule(name: string): RuleVerifier | undefined {
  return registry.get(name)?.verify;
}

export function listRules(): RuleInfo[] {
  return [...registry].map(([name, r]) => ({ name, description: r.description })).sort((a, b) => a.name.localeCompare(b.name));
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in verifiers

/** Prefers the shorter response (a length-bias probe and a sanity baseline): score = −(characters). */
export function shorterIsBetter(_prompt: string, response: string): number {
  return -[...response.trim()].length;
}

const OPERATION = /(-?\d+(?:\.\d+)?)\s*([+\-*/×÷x])\s*(-?\d+(?:\.\d+)?)/g;
const NUMBER = /-?\d+(?:\.\d+)?/g;
// Two numbers closer than this are the same answer (decimal answers of a division, printed rounded).
const ANSWER_TOLERANCE = 1e-6;

/** "1,000,000" → "1000000", so a separator is not read as two numbers. */
function withoutThousandsSeparators(text: string): string {
  return text.replace(/(\d),(?=\d{3}\b)/g, '$1');
}

/**
 * Checks arithmetic: the prompt's last binary operation `a op b` (integers or decimals; + - * × x / ÷) is evaluated,
 * and a response scores 1 when the last number it states equals the result, else 0. Undefined when the prompt has no
 * such operation, or divides by zero.
 */
export function arithmeticAnswer(prompt: string, response: string): number | undefined {
  const operations = [...withoutThousandsSeparators(prompt).matchAll(OPERATION)];
  const last = operations[operations.length - 1];
  if (!last) return undefined;
  const a = Number(last[1]);
  const b = Number(last[3]);
  let expected: number;
  switch (last[2]) {
    case '+':
      expected = a + b;
      break;
    case '-':
      expected = a - b;
      break;
    case '/':
    case '÷':
      if (b === 0) return undefined;
      expected = a / b;
      break;
    default:
      expected = a * b;
  }
  const stated = [...withoutThousandsSeparators(response).matchAll(NUMBER)];
  const answer = stated[stated.length - 1];
  if (!answer) return 0;
  const value = Number(answer[0]);
  return Math.abs(value - expected) <= ANSWER_TOLERANCE * Math.max(1, Math.abs(expected)) ? 1 : 0;
}

registerRule('length/shorter', 'prefers the shorter response: score = -(characters of the trimmed response)', shorterIsBetter);
registerRule(
  'arithmetic/exact',
  "checks the prompt's last 'a op b' (+ - * /): score 1 when the response's last number equals the result, else 0",
  arithmeticAnswer,
);

// The hidden human of each toy world (docs/benchmark.md): used to label seed pairs and to evaluate, never by the rounds.
for (const world of WORLDS.values()) registerRule(world.rule, world.description, (prompt, response) => world.gold(prompt, response));
