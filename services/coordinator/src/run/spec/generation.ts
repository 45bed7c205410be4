import type { GenerationParams } from '@alignment/contracts';
import { check } from './fields';

/** Responses per prompt in a round (the judge labels the first two, or the best and worst: spec.pairing). */
export const MAX_RESPONSES_PER_PROMPT = 16;

/**
 * Sampling parameters: `rounds` for spec.generation (n responses per round prompt; greedy is refused when rounds
 * run, since both responses would be identical), `evaluation` for evaluation.generation (n comes from
 * samples_per_prompt). Temperature, top_p, max_new_tokens and the stop strings have their ranges in GenerationParams'
 * buf.validate annotations (checkRanges).
 */
export function checkGeneration(params: GenerationParams | undefined, p: string, opts: { kind: 'rounds' | 'evaluation'; roundsPlanned: boolean }): void {
  if (!params) return;
  if (opts.kind === 'rounds') {
    check(
      params.n === 0 || (params.n >= 2 && params.n <= MAX_RESPONSES_PER_PROMPT),
      `${p}.n`,
      `must be 0 (default 2) or in [2, ${MAX_RESPONSES_PER_PROMPT}]: the judge labels a pair of responses per prompt, got ${params.n}`,
    );
    check(
      !(params.greedy && opts.roundsPlanned),
      `${p}.greedy`,
      'greedy decoding makes both responses of a prompt identical, so the judge would drop every pair',
    );
  } else {
    check(params.n === 0, `${p}.n`, `must be 0: evaluation.samples_per_prompt sets the samples per prompt, got ${params.n}`);
  }
  check(params.seed === 0, `${p}.seed`, 'must be 0: sampling seeds are derived per round and stage from spec.seed');
}
