import { promptText, type DataPrompt } from '@alignment/artifacts';
import {
  LmArgumentError,
  scoreItemProblem,
  scoreWith,
  type CausalModel,
  type RewardModel,
  type ScoreItem,
  type ScoreOptions,
  type StringPromptEncoding,
} from '@alignment/lm';
import { ANSWER_A, ANSWER_B, pairwisePrompt } from './pairwise-prompt';
import type { RuleVerifier } from './rules';

/** One prompt's responses to score, as read from the generator's responses artifact (pairing.ts picks them). */
export interface Candidate {
  promptIndex: number;
  /** Text or a conversation (ResponsesRecord.prompt). */
  prompt: DataPrompt;
  /** Two or more responses: the first two of the record, or all its distinct ones (pairing.ts). */
  responses: string[];
  /** Whether each response ended by itself (false: cut at max_new_tokens, scored without EOS); undefined = all did. */
  finished?: boolean[];
}

/** Scores of a candidate's responses, one per response in order (higher is better), or why it could not be scored. */
export type CandidateScores = { scores: number[] } | { invalid: string };

/**
 * A judging method (docs/algorithm.md §2, §5). It scores every response of each candidate; the caller picks the pair
 * (pairing.ts), turns scores into labels (chosen = higher), drops ties and writes the pairs.
 */
export interface PairScorer {
  /** Name written in every pair's "method" field. */
  readonly method: string;
  /** Factor applied to s1 − s2 before the tie tolerance is compared with it (β for the SPA implicit reward). */
  readonly tieScale: number;
  score(candidates: readonly Candidate[], signal?: AbortSignal): Promise<CandidateScores[]>;
}

type Prepared = { items: ScoreItem[] } | { invalid: string };

/** Tokenizes each candidate's items with a model, noting those the model cannot score (too long for the context). */
function prepare(model: CausalModel, candidates: readonly Candidate[], items: (c: Candidate) => ScoreItem[]): Prepared[] {
  return candidates.map((c) => {
    let built: ScoreItem[];
    try {
      built = items(c);
    } catch (error) {
      // A chat template that refuses a prompt makes that pair unscorable, not the whole request invalid.
      if (error instanceof LmArgumentError) return { invalid: error.reason };
      throw error;
    }
    const problem = built.map((item) => scoreItemProblem(model, item)).find((p) => p !== undefined);
    return problem ? { invalid: problem } : { items: built };
  });
}

/** logp of every item of the scorable candidates, in one batched pass; [] for the others. */
async function scoreAll(model: CausalModel, prepared: readonly Prepared[], options: ScoreOptions): Promise<number[][]> {
  const flat = prepared.flatMap((p) => ('items' in p ? p.items : []));
  const scores = await scoreWith(model, flat, options);
  let next = 0;
  return prepared.map((p) => ('items' in p ? p.items.map(() => scores[next++].logp) : []));
}

/**
 * SPA Eq. 7-8 with the optional length penalty of Eq. 13: s(y) = logp_policy(y|x) − logp_reference(y|x)
 * − α_len·|y|, |y| the response's tokens (EOS included, as the trainer scores it; an unfinished response, cut at
 * max_new_tokens, has no EOS: unfinished.ts).
 */
export class SpaImplicitScorer implements PairScorer {
  readonly method = 'spa_implicit';

  constructor(
    private readonly policy: CausalModel,
    private readonly reference: CausalModel,
    /** DPO β: ties are judged on β·(s1 − s2). */
    readonly tieScale: number,
    private readonly lengthPenalty: number,
    /** How string prompts are encoded: as the generator sampled them and the trainer scores them. */
    private readonly strings: StringPromptEncoding,
  ) {}

  async score(candidates: readonly Candidate[], signal?: AbortSignal): Promise<CandidateScores[]> {
    const build = (model: CausalModel) => (c: Candidate) => {
      const promptIds = model.tokenizer.encodePrompt(c.prompt, { strings: this.strings });
      return c.responses.map((r, k) => ({ promptIds, responseIds: model.tokenizer.encodeResponse(r, { finished: c.finished?.[k] ?? true }) }));
    };
    // A pair either model cannot score is invalid for both, so the two passes score the same pairs.
    const onPolicy = prepare(this.policy, candidates, build(this.policy));
    const onReference = prepare(this.reference, candidates, build(this.reference));
    const problem = (p: Prepared) => ('invalid' in p ? p.invalid : undefined);
    const invalid = onPolicy.map((p, i) => problem(p) ?? problem(onReference[i]));
    const only = (prepared: Prepared[]) => prepared.map((p, i) => (invalid[i] === undefined ? p : { invalid: invalid[i]! }));
    const policyLogps = await scoreAll(this.policy, only(onPolicy), { signal });
    const referenceLogps = await scoreAll(this.reference, only(onReference), { signal });
    return candidates.map((_, i) => {
      if (invalid[i] !== undefined) return { invalid: invalid[i]! };
      const tokens = (onPolicy[i] as { items: ScoreItem[] }).items.map((item) => item.responseIds.length);
      const s = tokens.map((n, k) => policyLogps[i][k] - referenceLogps[i][k] - this.lengthPenalty * n);
      return { scores: s };
    });
  }
}

/** An external reward model (the paper's PairRM baseline, here any one-label sequence classifier). */
export class RewardModelScorer implements PairScorer {
  readonly method = 'reward_model';
  readonly tieScale = 1;

  constructor(private readonly model: RewardModel) {}

  async score(candidates: readonly Candidate[], signal?: AbortSignal): Promise<CandidateScores[]> {
    const prepared = candidates.map((c): { ids: number[][] } | { invalid: string } => {
      try {
        const ids = c.responses.map((r) => this.model.encode(c.prompt, r));
        const problem = ids.map((s) => this.model.sequenceProblem(s)).find((p) => p !== undefined);
        return problem ? { invalid: `a response ${problem}` } : { ids };
      } catch (error) {
        if (error instanceof LmArgumentError) return { invalid: error.reason };
        throw error;
      }
    });
    const rewards = await this.model.score(prepared.flatMap((p) => ('ids' in p ? p.ids : [])), { signal });
    let next = 0;
    return prepared.map((p): CandidateScores => ('ids' in p ? { scores: p.ids.map(() => rewards[next++]) } : { invalid: p.invalid }));
  }
}

/**
 * LLM-as-judge with SPA Listing 1: the judge model reads the pairwise prompt and its log-probabilities of answering
 * "(A)" and "(B)" decide. Asked in both orders to cancel position bias; a response's score is the mean log-prob of
 * the judge naming it: s1 = ½[logp(A | y1 first) + logp(B | y1 second)], s2 likewise.
 */
export class LlmJudgeScorer implements PairScorer {
  readonly method = 'llm_as_judge';
  readonly tieScale = 1;

  constructor(private readonly judge: CausalModel) {}

  async score(candidates: readonly Candidate[], signal?: AbortSignal): Promise<CandidateScores[]> {
    const { tokenizer } = this.judge;
    const answerA = tokenizer.encodeText(ANSWER_A);
    const answerB = tokenizer.encodeText(ANSWER_B);
    const prepared = prepare(this.judge, candidates, (c) => {
      // Its scores compare exactly two responses, so best-vs-worst pairing is refused for it (judge-pairs.ts).
      if (c.responses.length !== 2) throw new Error(`llm_as_judge compares two responses, got ${c.responses.length}`);
      const [y1, y2] = c.responses;
      // The judging question is an instruction to the judge model: one user turn through its chat template.
      const first = tokenizer.encodePrompt(pairwisePrompt(c.prompt, y1, y2), { strings: 'chat-template' });
      const second = tokenizer.encodePrompt(pairwisePrompt(c.prompt, y2, y1), { strings: 'chat-template' });
      return [
        { promptIds: first, responseIds: answerA },
        { promptIds: first, responseIds: answerB },
        { promptIds: second, responseIds: answerA },
        { promptIds: second, responseIds: answerB },
      ];
    });
    const logps = await scoreAll(this.judge, prepared, { signal });
    return prepared.map((p, i) => {
      if ('invalid' in p) return { invalid: p.invalid };
      const [firstA, firstB, secondA, secondB] = logps[i];
      return { scores: [(firstA + secondB) / 2, (firstB + secondA) / 2] };
    });
  }
}

/** A programmatic verifier from the rule registry. */
export class RuleScorer implements PairScorer {
  readonly method = 'rule';
  readonly tieScale = 1;

  constructor(
    private readonly name: string,
    private readonly verify: RuleVerifier,
  ) {}

  async score(candidates: readonly Candidate[]): Promise<CandidateScores[]> {
    return candidates.map((c) => {
      // A rule reads the question the responses answer: a conversation's last user turn.
      const scores = c.responses.map((r) => this.verify(promptText(c.prompt), r));
      if (scores.some((s) => s === undefined || !Number.isFinite(s))) return { invalid: `rule '${this.name}' cannot judge this prompt` };
      return { scores: scores as number[] };
    });
  }
}
