"""Response log-probabilities of a causal LM: the logp(y|x) of docs/algorithm.md's notation, and the de-coupled logp̃ of
§3 (SPA Eq. 11-12).

logp(y|x) is the SUM of the log-probabilities of the response tokens only (prompt and padding masked, no length
normalisation), after the prompt is encoded: raw text, or through the tokenizer's chat template (``encode_prompt``).
Everything from the logits on is float32, also when the model runs under bf16 autocast (float64 for a float64 model: exact gradient checks).

A preference batch holds chosen and rejected sequences in one right-padded tensor, chosen rows first, so one forward
pass scores both (TRL's ``concatenated_forward``); ``split_pairs`` cuts any per-sequence result back into halves.

Typical use in a training step (the reference pass once per batch, under no_grad)::

    batch = build_pair_batch(tokenizer, prompts, chosen, rejected, max_length=1024, strings=RAW_TEXT).to(device)
    ref = reference_pass(ref_model, batch, keep_logits=dnd_lambda > 0)
    policy = policy_pass(model, batch)                      # policy.logps carries the gradient
    logp_c, logp_r = split_pairs(policy.logps)
    if dnd_lambda > 0:                                      # §3 de-coupled noise detection
        mixed = decoupled_sequence_logps(policy.logits, ref.logits, batch.input_ids, batch.response_mask, dnd_lambda)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from alignment_trainer.training.data_forms import CHAT_TEMPLATE, RAW_TEXT, STRING_PROMPT_ENCODINGS

# One float32 temporary of shape [sequences, chunk, vocab] is at most this many elements (128 MiB): the time axis
# is chunked so that a full [B, T, V] float32 log-softmax never exists (with a 128k vocabulary it would be several
# GiB per batch).
CHUNK_ELEMENTS = 1 << 25

Prompt = str | Sequence[Mapping[str, str]]
"""A prompt: a string (one user turn) or a list of chat messages ({"role", "content"}), as in TRL's data formats."""


# ---------------------------------------------------------------------------------------------------------------
# Batches


@dataclass(frozen=True)
class TokenizedPair:
    """Token ids of one preference pair: the chat-templated prompt and the two responses, each ending with EOS unless
    it was unfinished (cut at max_new_tokens)."""

    prompt_ids: tuple[int, ...]
    chosen_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...]


@dataclass(frozen=True)
class PairBatch:
    """B pairs as 2B right-padded sequences: rows [0, B) chosen, rows [B, 2B) rejected, pair i in rows i and B + i."""

    input_ids: torch.Tensor  # [2B, T] long
    attention_mask: torch.Tensor  # [2B, T] long, 1 on prompt and response tokens
    response_mask: torch.Tensor  # [2B, T] bool, True on response tokens (EOS included, if any) only
    n_truncated: int  # pairs with at least one response cut at max_length
    # Logits are computed from this position on (0 = every position): the last position before the batch's
    # earliest response token; see forward_logits.
    logits_from: int = 0
    # The reference's logp of every row [2B] float32 when they were computed beforehand (reference_cache.py).
    ref_logps: torch.Tensor | None = None

    @property
    def n_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            response_mask=self.response_mask.to(device),
            n_truncated=self.n_truncated,
            logits_from=self.logits_from,
            ref_logps=None if self.ref_logps is None else self.ref_logps.to(device),
        )


def encode_prompt(tokenizer, prompt: Prompt, *, strings: str) -> list[int]:
    """Token ids of a prompt, as the TypeScript ChatTokenizer.encodePrompt (libs/lm/src/tokenizer.ts) computes them.

    A string prompt with ``strings`` RAW_TEXT is encoded as it is, without added special tokens (TRL's standard
    prompt: no template token at all); with CHAT_TEMPLATE it is one user turn through the chat template with the
    generation prompt. A conversation (message list) always goes through the chat template with the generation
    prompt. The rendered text is encoded without added special tokens, because chat templates already write their
    BOS/header tokens (add_special_tokens=True would double a BOS). Asking for a template the tokenizer lacks is a
    ValueError naming prompt_encoding (string prompts) or the prompt (a conversation).
    """
    if strings not in STRING_PROMPT_ENCODINGS:
        raise ValueError(f"strings must be one of {STRING_PROMPT_ENCODINGS}, got {strings!r}")
    if isinstance(prompt, str) and strings == RAW_TEXT:
        return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("prompt_encoding: PROMPT_ENCODING_CHAT_TEMPLATE needs a chat template, and the tokenizer has "
                         "none: encode the prompts as raw text" if isinstance(prompt, str) else
                         "prompt: a conversation (message list) is rendered with the chat template, and the tokenizer "
                         "has none: give the prompt as text")
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_pair(tokenizer, prompt: Prompt, chosen: str, rejected: str, *, strings: str,
                  chosen_finished: bool = True, rejected_finished: bool = True) -> TokenizedPair:
    """The prompt as encode_prompt encodes it (``strings``: RAW_TEXT or CHAT_TEMPLATE, for a string prompt); each
    response as plain text plus EOS.

    Responses are encoded separately and EOS is appended, so the response tokens are exactly what generation would
    have produced up to and including the stop token (SPA and TRL append EOS the same way). A response marked
    unfinished (the generator cut it at max_new_tokens: LabelledPair chosen_finished / rejected_finished false) gets
    no EOS, so it is never learned as "stop here" (docs/algorithm.md §7); the judge's ChatTokenizer.encodeResponse
    does the same.
    """
    prompt_ids = encode_prompt(tokenizer, prompt, strings=strings)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token: responses must end with EOS (docs/algorithm.md §1 notation)")

    def response(text: str, finished: bool) -> tuple[int, ...]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return (*ids, eos) if finished else tuple(ids)

    return TokenizedPair(tuple(prompt_ids), response(chosen, chosen_finished), response(rejected, rejected_finished))


def collate_pairs(pairs: Sequence[TokenizedPair], *, pad_token_id: int, max_length: int,
                  response_logits_only: bool = False) -> PairBatch:
    """Concatenates chosen and rejected sequences into one right-padded batch. ``response_logits_only`` sets
    logits_from so that forward_logits runs the LM head only from the position that predicts the batch's earliest
    response token on (TrainingHyperparams.full_logits false); the log-probs are the same.

    A sequence longer than max_length keeps its whole prompt and loses the END of its response (the prompt is what
    the response is conditioned on; losing it would change what is being scored). A pair whose prompt leaves no room
    for a single response token raises ValueError: such pairs must be filtered (and counted) when the data is loaded.
    """
    if not pairs:
        raise ValueError("collate_pairs needs at least one pair")
    sequences: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    truncated = [False] * len(pairs)
    for side in ("chosen_ids", "rejected_ids"):
        for i, pair in enumerate(pairs):
            room = max_length - len(pair.prompt_ids)
            if room < 1:
                raise ValueError(
                    f"pair {i}: prompt has {len(pair.prompt_ids)} tokens, max_length {max_length} leaves no room "
                    "for the response; drop such pairs when loading the data"
                )
            resp = getattr(pair, side)
            if len(resp) > room:
                resp = resp[:room]
                truncated[i] = True
            sequences.append((pair.prompt_ids, resp))

    width = max(len(p) + len(r) for p, r in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    response_mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, (prompt_ids, resp) in enumerate(sequences):
        n_p, n = len(prompt_ids), len(prompt_ids) + len(resp)
        input_ids[row, :n] = torch.tensor(prompt_ids + resp, dtype=torch.long)
        attention_mask[row, :n] = 1
        response_mask[row, n_p:n] = True
    first_response = min(len(p) for p, _ in sequences)
    return PairBatch(input_ids, attention_mask, response_mask, n_truncated=sum(truncated),
                     logits_from=first_response - 1 if response_logits_only else 0)


def build_pair_batch(
    tokenizer,
    prompts: Sequence[Prompt],
    chosen: Sequence[str],
    rejected: Sequence[str],
    *,
    max_length: int,
    strings: str,
    chosen_finished: Sequence[bool] | None = None,
    rejected_finished: Sequence[bool] | None = None,
) -> PairBatch:
    """tokenize_pair for each pair (string prompts encoded as ``strings`` says), then collate_pairs (padding with the
    tokenizer's pad token, else EOS). The finished flags (default: all finished) say which responses get EOS."""
    if not len(prompts) == len(chosen) == len(rejected):
        raise ValueError(f"lengths differ: {len(prompts)} prompts, {len(chosen)} chosen, {len(rejected)} rejected")
    c_done = [True] * len(chosen) if chosen_finished is None else list(chosen_finished)
    r_done = [True] * len(rejected) if rejected_finished is None else list(rejected_finished)
    pairs = [tokenize_pair(tokenizer, p, c, r, strings=strings, chosen_finished=cf, rejected_finished=rf)
             for p, c, r, cf, rf in zip(prompts, chosen, rejected, c_done, r_done, strict=True)]
    # The pad id only fills masked positions, so any valid id will do when a tokenizer defines none.
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return collate_pairs(pairs, pad_token_id=pad, max_length=max_length)


def split_pairs(per_sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) halves of a per-sequence tensor of a PairBatch."""
    n = per_sequence.shape[0]
    if n % 2:
        raise ValueError(f"a pair batch has an even number of rows, got {n}")
    return per_sequence[: n // 2], per_sequence[n // 2 :]


# ---------------------------------------------------------------------------------------------------------------
# Log-probabilities from logits


def _chunk_len(n_rows: int, vocab: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return chunk_size
    return max(1, CHUNK_ELEMENTS // max(1, n_rows * vocab))


def _work_dtype(logits: torch.Tensor) -> torch.dtype:
    """float32, or float64 for float64 logits."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


class _TargetLogProbs(torch.autograd.Function):
    """log softmax(logits)[target] per position, in float32, chunked over time in forward AND backward.

    Written as a Function because plain autograd over ``chunk.float().logsumexp()`` saves every float32 chunk for
    the backward pass, which adds up to the full [N, T, V] float32 tensor this module exists to avoid. Here only the
    logits (alive anyway as the model's output) and the [N, T] logsumexp are saved; backward recomputes the softmax
    one chunk at a time: d logp[t] / d logits[t, v] = 1{v = target} - softmax(logits[t])[v].
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
        n, t, _ = logits.shape
        dtype = _work_dtype(logits)
        out = torch.empty((n, t), dtype=dtype, device=logits.device)
        lse = torch.empty((n, t), dtype=dtype, device=logits.device)
        for s in range(0, t, chunk):
            x = logits[:, s : s + chunk].to(dtype)
            lse[:, s : s + chunk] = torch.logsumexp(x, dim=-1)
            out[:, s : s + chunk] = x.gather(-1, targets[:, s : s + chunk, None]).squeeze(-1) - lse[:, s : s + chunk]
        ctx.save_for_backward(logits, targets, lse)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        logits, targets, lse = ctx.saved_tensors
        grad = torch.empty_like(logits)
        for s in range(0, logits.shape[1], ctx.chunk):
            g_out = grad_out[:, s : s + ctx.chunk, None].to(lse.dtype)
            g = torch.exp(logits[:, s : s + ctx.chunk].to(lse.dtype) - lse[:, s : s + ctx.chunk, None]).mul_(-g_out)
            g.scatter_add_(-1, targets[:, s : s + ctx.chunk, None], g_out)
            grad[:, s : s + ctx.chunk] = g
        return grad, None, None


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor, *, chunk_size: int | None = None) -> torch.Tensor:
    """[N, T-1] float32: log p(input_ids[:, t+1] | input_ids[:, :t+1]) from causal-LM logits [N, T, V].

    Differentiable with respect to logits. chunk_size is the number of time steps per float32 temporary; None picks
    it so that one temporary has at most CHUNK_ELEMENTS elements.
    """
    if logits.dim() != 3 or logits.shape[:2] != input_ids.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match input_ids {tuple(input_ids.shape)}")
    # The logits at position t predict the token at t + 1.
    shifted, targets = logits[:, :-1], input_ids[:, 1:]
    chunk = _chunk_len(shifted.shape[0], shifted.shape[2], chunk_size)
    return _TargetLogProbs.apply(shifted, targets, chunk)


def aligned(logits: torch.Tensor, *per_position: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``per_position`` tensors [N, T, ...] cut to the last K positions when ``logits`` [N, K, V] holds only those
    (forward_logits with logits_from > 0). Only positions before the kept ones are cut, so a response mask that is
    True there means the logits were cut too far: ValueError."""
    k, t = logits.shape[1], per_position[0].shape[1]
    if k > t:
        raise ValueError(f"logits have {k} positions, the inputs only {t}")
    if k == t:
        return per_position
    return tuple(x[:, t - k:] for x in per_position)


def response_positions(logits: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """[N, K-1] bool: which of the logits' positions (the last excluded) predict a response token, for logits over
    every position or over the last K only."""
    (mask,) = aligned(logits, response_mask)
    return mask[:, 1:]


def sequence_logps(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """[N] float32 logp(y|x): sum of the response tokens' log-probs (docs/algorithm.md §1 notation). Differentiable.
    ``logits`` cover every position or the last K (forward_logits with a PairBatch's logits_from)."""
    t = input_ids.shape[1]
    input_ids, response_mask = aligned(logits, input_ids, response_mask)
    if logits.shape[1] < t and bool(response_mask[:, 0].any()):
        raise ValueError("the kept logits start at a response token: the token before it is not scored")
    per_token = token_logps(logits, input_ids, chunk_size=chunk_size)
    # A response token at position t is scored by the logits at t - 1; position 0 is always prompt.
    return (per_token * response_mask[:, 1:]).sum(-1)


@torch.no_grad()
def decoupled_sequence_logps(
    policy_logits: torch.Tensor,
    ref_logits: torch.Tensor,
    input_ids: torch.Tensor,
    response_mask: torch.Tensor,
    dnd_lambda: float,
    *,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """[N] float32 logp̃: de-coupled noise detection, token level (docs/algorithm.md §3, SPA Eq. 11-12).

    h̃ = (1 + λ)·logits_θ − λ·logits_ref per position, then log-softmax, then the sum over response tokens. It only
    decides which pairs are flagged (a hard threshold), so it carries no gradient. λ = 0 gives ordinary logp; callers
    skip this function then and use the policy's logp directly.
    """
    if dnd_lambda < 0:
        raise ValueError(f"dnd_lambda must be >= 0, got {dnd_lambda}")
    if policy_logits.shape != ref_logits.shape:
        raise ValueError(f"policy logits {tuple(policy_logits.shape)} != reference {tuple(ref_logits.shape)}")
    input_ids, response_mask = aligned(policy_logits, input_ids, response_mask)
    pol, ref, targets, mask = policy_logits[:, :-1], ref_logits[:, :-1], input_ids[:, 1:], response_mask[:, 1:]
    chunk = _chunk_len(pol.shape[0], pol.shape[2], chunk_size)
    dtype = _work_dtype(pol)
    total = torch.zeros(pol.shape[0], dtype=dtype, device=pol.device)
    for s in range(0, pol.shape[1], chunk):
        mixed = (1.0 + dnd_lambda) * pol[:, s : s + chunk].to(dtype) - dnd_lambda * ref[:, s : s + chunk].to(dtype)
        lp = mixed.gather(-1, targets[:, s : s + chunk, None]).squeeze(-1) - torch.logsumexp(mixed, dim=-1)
        total += (lp * mask[:, s : s + chunk]).sum(-1)
    return total


# ---------------------------------------------------------------------------------------------------------------
# Model passes


@dataclass(frozen=True)
class Pass:
    """One forward pass over a PairBatch: per-sequence logp [2B] float32 and, when kept, the logits [2B, T, V]."""

    logps: torch.Tensor
    logits: torch.Tensor | None


def forward_logits(model, batch: PairBatch) -> torch.Tensor:
    """The model's logits for the batch, through the model's own forward: [N, T, V], or [N, T - logits_from, V]
    when the batch has logits_from > 0. The transformer still runs over every position; only the LM head (and the
    [N, ·, V] logits, the largest activation of a big-vocabulary model) is limited to the positions that predict
    response tokens, through transformers' ``logits_to_keep``. The functions above align such logits with the
    batch's last positions.

    Calling the top-level forward (not its decoder and head separately) keeps DDP/FSDP/DeepSpeed wrappers working.
    use_cache=False: no KV cache is needed for scoring, and building one wastes memory.
    """
    keep = {"logits_to_keep": batch.input_ids.shape[1] - batch.logits_from} if batch.logits_from > 0 else {}
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False, **keep).logits


def policy_pass(model, batch: PairBatch, *, chunk_size: int | None = None) -> Pass:
    """π_θ's logp with gradient; the logits are returned for DND (they are saved for backward anyway)."""
    logits = forward_logits(model, batch)
    return Pass(sequence_logps(logits, batch.input_ids, batch.response_mask, chunk_size=chunk_size), logits)


@torch.no_grad()
def reference_pass(ref_model, batch: PairBatch, *, keep_logits: bool, chunk_size: int | None = None) -> Pass:
    """π_ref's logp, without gradient; run it once per batch. keep_logits only when DND (λ > 0) needs them."""
    logits = forward_logits(ref_model, batch)
    logps = sequence_logps(logits, batch.input_ids, batch.response_mask, chunk_size=chunk_size)
    return Pass(logps, logits if keep_logits else None)
