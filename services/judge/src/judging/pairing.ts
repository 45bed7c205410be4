import { isBlank } from '@alignment/artifacts';

/**
 * Which two of a prompt's responses become its labelled pair (judge.proto JudgePairsRequest.pairing;
 * docs/algorithm.md §7):
 *   - first_two: the first two responses in sampling order, as SPA Algorithm 1 samples them;
 *   - best_worst: every distinct non-empty response is scored and the pair is (highest, lowest), the max-min pairs of
 *     RLHFlow's iterative DPO.
 */
export type PairingName = 'first_two' | 'best_worst';

/**
 * The responses of one record to score, or why the record has no pair: `invalid` (fewer than two responses, or an
 * empty one among the first two; for best_worst, fewer than two non-empty ones) or `identical` (no two differ).
 * best_worst keeps the first occurrence of each distinct non-empty response, in sampling order.
 */
export function responsesToScore(responses: readonly string[], pairing: PairingName): string[] | 'invalid' | 'identical' {
  if (pairing === 'first_two') {
    const [a, b] = responses;
    if (responses.length < 2 || isBlank(a) || isBlank(b)) return 'invalid';
    return a === b ? 'identical' : [a, b];
  }
  const nonEmpty = responses.filter((r) => !isBlank(r));
  if (nonEmpty.length < 2) return 'invalid';
  const distinct = [...new Set(nonEmpty)];
  return distinct.length < 2 ? 'identical' : distinct;
}

/**
 * The pair of scored responses to label: the first two for first_two; for best_worst the highest-scored response
 * and the lowest-scored other one (on equal scores the earlier in sampling order), so equal scores everywhere
 * still give two different responses, which the tie test then drops.
 */
export function selectPair(
  responses: readonly string[],
  scores: readonly number[],
  pairing: PairingName,
): { responses: [string, string]; scores: [number, number] } {
  if (pairing === 'first_two') return { responses: [responses[0], responses[1]], scores: [scores[0], scores[1]] };
  let best = 0;
  scores.forEach((s, i) => {
    if (s > scores[best]) best = i;
  });
  let worst = best === 0 ? 1 : 0;
  scores.forEach((s, i) => {
    if (i !== best && s < scores[worst]) worst = i;
  });
  return { responses: [responses[best], responses[worst]], scores: [scores[best], scores[worst]] };
}
