import type { GenerationParams } from '@alignment/contracts';
import { check, finite } from './fields';

/** Responses per prompt in a round (the judge labels the first two, or the best and worst: spec.pairing). */
export const MAX_RESPONSES_PER_PROMPT = 16;
export const MAX_NEW_TOKENS = 32_768;
export const MAX_TEMPERATURE = 10;

/**
 * Sampling parameters: `rounds` for spec.generation (n responses per round prompt; greedy is refused when rounds
 * run, since both responses would be identical), `evaluation` for evaluation.generation (n comes from
 * samples_per_prompt).
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
  if (params.temperature !== undefined) {
    finite(params.temperature, `${p}.temperature`);
    check(params.temperature >= 0 && params.temperature <= MAX_TEMPERATURE, `${p}.temperature`, `must be in [0, ${MAX_TEMPERATURE}], got ${params.temperature}`);
  }
  if (params.topP !== undefined) {
    finite(params.topP, `${p}.top_p`);
    check(params.topP > 0 && params.topP <= 1, `${p}.top_p`, `must be in (0, 1], got ${params.topP}`);
  }
  check(params.maxNewTokens <= MAX_NEW_TOKENS, `${p}.max_new_tokens`, `must be 0 (default 300) or in [1, ${MAX_NEW_TOKENS}], got ${params.maxNewTokens}`);
  params.stop.forEach((s, i) => check(s !== '', `${p}.stop[${i}]`, 'must not be empty'));
  check(params.seed === 0, `${p}.seed`, 'must be 0: sampling seeds are derived per round and stage from spec.seed');
}
