"""logprobs.py: response log-probs (docs/algorithm.md §1 notation), the de-coupled variant (§3) and pair batches."""

from __future__ import annotations

import math

import pytest
import torch

from alignment_trainer.training import logprobs
from alignment_trainer.training.logprobs import (
    TokenizedPair,
    build_pair_batch,
    collate_pairs,
    decoupled_sequence_logps,
    policy_pass,
    reference_pass,
    sequence_logps,
    split_pairs,
    token_logps,
)
from tiny import tiny_llama, tiny_tokenizer

PROMPTS = ["What colour is the sky?", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]]
CHOSEN = ["The sky is blue.", "Four."]
REJECTED = ["Green, mostly, on Tuesdays.", "Five"]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def batch(tok):
    return build_pair_batch(tok, PROMPTS, CHOSEN, REJECTED, max_length=256, strings="chat-template")


def test_an_unfinished_response_is_tokenised_without_eos(tok):
    """A response cut at max_new_tokens (LabelledPair chosen_finished false) never ended: no EOS is appended, so it
    is not learned as "stop here" (docs/algorithm.md §7); a finished one keeps its EOS."""
    pair = logprobs.tokenize_pair(tok, "Q?", "cut off mid", "done.", chosen_finished=False, strings="chat-template")
    text_ids = tuple(tok("cut off mid", add_special_tokens=False)["input_ids"])
    assert pair.chosen_ids == text_ids and tok.eos_token_id not in pair.chosen_ids
    assert pair.rejected_ids[-1] == tok.eos_token_id
    batch = build_pair_batch(tok, ["Q?"], ["cut off mid"], ["done."], max_length=64, strings="chat-template",
                             chosen_finished=[False], rejected_finished=[True])
    assert batch.input_ids[0][batch.response_mask[0]].tolist() == list(text_ids)
    assert batch.input_ids[1][batch.response_mask[1]].tolist()[-1] == tok.eos_token_id


def test_a_string_prompt_is_raw_text_or_one_templated_user_turn_and_a_conversation_always_templated(tok):
    """RunSpec.prompt_encoding: raw text inserts no template token (TRL's standard prompt); the chat template wraps
    the same text as one user turn with the generation prompt. libs/lm/src/tokenizer.ts encodes both alike (the TS
    parity of raw-text scores is checked against tools/testing/make_tiny_model.py's scores_raw)."""
    prompt = "What colour is the sky?"
    raw = logprobs.encode_prompt(tok, prompt, strings="raw-text")
    templated = logprobs.encode_prompt(tok, prompt, strings="chat-template")
    assert raw == tok(prompt, add_special_tokens=False)["input_ids"]
    assert tok.decode(raw) == prompt
    assert tok.decode(templated) == "<|user|>What colour is the sky?<|eos|><|assistant|>"
    assert set(tok.convert_tokens_to_ids(["<|user|>", "<|assistant|>"])).isdisjoint(raw)
    conversation = PROMPTS[1]
    assert logprobs.encode_prompt(tok, conversation, strings="raw-text") == \
        logprobs.encode_prompt(tok, conversation, strings="chat-template")
    pair = logprobs.tokenize_pair(tok, prompt, "Blue.", "Green.", strings="raw-text")
    assert pair.prompt_ids == tuple(raw)


def test_without_a_chat_template_raw_text_encodes_and_the_template_is_refused(tok):
    bare = tiny_tokenizer()
    bare.chat_template = None
    assert logprobs.encode_prompt(bare, "Sky?", strings="raw-text") == bare("Sky?", add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match=r"^prompt_encoding: PROMPT_ENCODING_CHAT_TEMPLATE needs a chat template"):
        logprobs.encode_prompt(bare, "Sky?", strings="chat-template")
    with pytest.raises(ValueError, match=r"^prompt: a conversation \(message list\) is rendered with the chat template"):
        logprobs.encode_prompt(bare, PROMPTS[1], strings="raw-text")
    with pytest.raises(ValueError, match=r"strings must be one of"):
        logprobs.encode_prompt(tok, "Sky?", strings="template")


def explicit_logp(logits_row, ids_row, mask_row) -> float:
    """Σ over response tokens t of log softmax(logits[t-1])[ids[t]], with an explicit softmax in Python floats."""
    total = 0.0
    for t in range(1, len(ids_row)):
        if not mask_row[t]:
            continue
        row = [float(v) for v in logits_row[t - 1]]
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        total += row[int(ids_row[t])] - log_z
    return total


# --- batches -----------------------------------------------------------------------------------------------------


def test_batch_layout_chat_template_response_mask_and_eos(tok, batch):
    b = batch.n_pairs
    assert b == 2 and batch.input_ids.shape[0] == 4 and batch.n_truncated == 0
    for row, (prompt, response) in enumerate(zip(PROMPTS * 2, CHOSEN + REJECTED, strict=True)):
        ids = batch.input_ids[row][batch.attention_mask[row].bool()].tolist()
        resp_ids = batch.input_ids[row][batch.response_mask[row]].tolist()
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        prompt_text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert prompt_text.endswith("<|assistant|>")
        # The full sequence is prompt (chat template, generation prompt) + response + EOS, nothing else.
        assert tok.decode(ids) == prompt_text + response + "<|eos|>"
        assert tok.decode(resp_ids) == response + "<|eos|>"
        assert resp_ids[-1] == tok.eos_token_id
        # Response tokens are contiguous and last: right padding after them.
        n = len(ids)
        assert batch.response_mask[row, n - len(resp_ids) : n].all() and not batch.response_mask[row, n:].any()
        assert (batch.input_ids[row, n:] == tok.pad_token_id).all()
    # Pair i is rows i (chosen) and b + i (rejected): same prompt tokens.
    for i in range(b):
        c, r = batch.input_ids[i], batch.input_ids[b + i]
        n_prompt = int((~batch.response_mask[i] & batch.attention_mask[i].bool()).sum())
        assert torch.equal(c[:n_prompt], r[:n_prompt])


def test_truncation_cuts_the_response_end_and_counts_pairs():
    pairs = [
        TokenizedPair(prompt_ids=(5, 6, 7), chosen_ids=(10, 11, 1), rejected_ids=(12, 1)),  # fits in 6
        TokenizedPair(prompt_ids=(5, 6), chosen_ids=(20, 21, 22, 23, 24, 1), rejected_ids=(25, 1)),  # chosen cut
        TokenizedPair(prompt_ids=(8,), chosen_ids=(30, 1), rejected_ids=(31, 32, 33, 34, 35, 36, 1)),  # rejected cut
    ]
    batch = collate_pairs(pairs, pad_token_id=0, max_length=6)
    assert batch.n_truncated == 2
    assert batch.input_ids.shape == (6, 6)
    assert batch.input_ids[1].tolist() == [5, 6, 20, 21, 22, 23]  # prompt kept whole, response end dropped
    assert batch.response_mask[1].tolist() == [False, False, True, True, True, True]
    assert batch.input_ids[5].tolist() == [8, 31, 32, 33, 34, 35]
    assert batch.input_ids[3].tolist() == [5, 6, 7, 12, 1, 0] and batch.attention_mask[3].tolist() == [1] * 5 + [0]
    with pytest.raises(ValueError, match="pair 0: prompt has 3 tokens"):
        collate_pairs(pairs, pad_token_id=0, max_length=3)


def test_split_pairs():
    c, r = split_pairs(torch.arange(6))
    assert c.tolist() == [0, 1, 2] and r.tolist() == [3, 4, 5]


# --- log-probs -----------------------------------------------------------------------------------------------------


def test_sequence_logps_equal_an_explicit_per_token_loop(tok, batch):
    model = tiny_llama(vocab_size=len(tok), seed=1)
    with torch.no_grad():
        logits = logprobs.forward_logits(model, batch)
    got = sequence_logps(logits, batch.input_ids, batch.response_mask)
    assert got.dtype == torch.float32 and got.shape == (4,)
    for row in range(4):
        want = explicit_logp(logits[row].double(), batch.input_ids[row], batch.response_mask[row])
        assert got[row].item() == pytest.approx(want, rel=1e-5, abs=1e-4)
    # Not trivially uniform: a uniform model would give -n·log V for every row.
    n_resp = batch.response_mask.sum(-1).double()
    assert not torch.allclose(got.double(), -n_resp * math.log(len(tok)), atol=1.0)


def test_padding_does_not_change_logp(tok, batch):
    """A row scored inside the padded batch equals the same sequence scored alone, unpadded."""
    model = tiny_llama(vocab_size=len(tok), seed=2)
    with torch.no_grad():
        in_batch = policy_pass(model, batch).logps
        for row in range(4):
            n = int(batch.attention_mask[row].sum())
            ids = batch.input_ids[row : row + 1, :n]
            alone = model(input_ids=ids, use_cache=False).logits
            want = sequence_logps(alone, ids, batch.response_mask[row : row + 1, :n])
            assert in_batch[row].item() == pytest.approx(want.item(), abs=1e-4)


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_chunked_equals_unchunked_values_and_gradients(chunk):
    torch.manual_seed(0)
    logits = (3 * torch.randn(3, 11, 17, dtype=torch.float64)).requires_grad_()
    ids = torch.randint(0, 17, (3, 11))
    mask = torch.zeros(3, 11, dtype=torch.bool)
    mask[:, 4:] = True
    mask[2, 9:] = False
    weights = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)

    # Reference: the naive full log-softmax.
    naive = (torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]).sum(-1)
    (g_naive,) = torch.autograd.grad((naive * weights).sum(), logits)
    unchunked = sequence_logps(logits, ids, mask, chunk_size=10)  # one chunk covers all 10 positions
    chunked = sequence_logps(logits, ids, mask, chunk_size=chunk)
    (g_chunked,) = torch.autograd.grad((chunked * weights).sum(), logits)
    assert torch.allclose(chunked.double(), unchunked.double(), atol=1e-5)
    assert torch.allclose(chunked.double(), naive, atol=1e-5)
    assert torch.allclose(g_chunked, g_naive, atol=1e-6)


def test_token_logps_gradcheck():
    torch.manual_seed(1)
    logits = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 6, (2, 5))
    # float64 logits are scored in float64 (float32 and bf16 ones in float32), so the default tolerances hold.
    assert token_logps(logits, ids).dtype == torch.float64
    assert token_logps(logits.float(), ids).dtype == torch.float32
    assert torch.autograd.gradcheck(lambda x: token_logps(x, ids, chunk_size=2), (logits,))


def test_default_chunk_bounds_the_float32_temporary(monkeypatch):
    monkeypatch.setattr(logprobs, "CHUNK_ELEMENTS", 4 * 9 * 5)  # rows × vocab × 5 time steps
    assert logprobs._chunk_len(4, 9, None) == 5
    assert logprobs._chunk_len(4, 1000, None) == 1


def test_bf16_autocast_path_returns_float32_close_to_fp32(tok, batch):
    model = tiny_llama(vocab_size=len(tok), seed=3)
    fp32 = policy_pass(model, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = policy_pass(model, batch)
    assert bf16.logits.dtype == torch.bfloat16  # the model really ran in bf16 ...
    assert bf16.logps.dtype == torch.float32  # ... and the log-probs are float32 all the same
    assert torch.allclose(bf16.logps, fp32.logps, rtol=0.05, atol=0.5)
    bf16.logps.sum().backward()  # the custom backward accepts bf16 logits
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_reference_pass_has_no_grad_and_keeps_logits_only_when_asked(tok, batch):
    model = tiny_llama(vocab_size=len(tok), seed=4)
    ref = reference_pass(model, batch, keep_logits=False)
    assert ref.logits is None and not ref.logps.requires_grad
    kept = reference_pass(model, batch, keep_logits=True)
    assert kept.logits is not None and torch.equal(kept.logps, ref.logps)
    pol = policy_pass(model, batch)
    assert pol.logps.requires_grad and torch.allclose(pol.logps.detach(), ref.logps)


# --- de-coupled noise detection (§3) ---------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [0.5, 0.125])
def test_decoupled_logps_equal_explicit_token_level_mixing(tok, batch, lam):
    policy, ref = tiny_llama(vocab_size=len(tok), seed=5), tiny_llama(vocab_size=len(tok), seed=6)
    pol = policy_pass(policy, batch)
    refp = reference_pass(ref, batch, keep_logits=True)
    got = decoupled_sequence_logps(pol.logits, refp.logits, batch.input_ids, batch.response_mask, lam, chunk_size=3)
    assert got.dtype == torch.float32 and not got.requires_grad
    for row in range(4):
        mixed = (1 + lam) * pol.logits[row].detach().double() - lam * refp.logits[row].double()
        want = explicit_logp(mixed, batch.input_ids[row], batch.response_mask[row])
        assert got[row].item() == pytest.approx(want, rel=1e-5, abs=1e-4)
    # Token-level mixing is not sequence-level extrapolation of logp (the normaliser differs per token).
    seq_level = (1 + lam) * pol.logps.detach() - lam * refp.logps
    assert (got - seq_level).abs().max() > 1e-3


def test_decoupled_with_lambda_zero_is_ordinary_logp(tok, batch):
    policy, ref = tiny_llama(vocab_size=len(tok), seed=5), tiny_llama(vocab_size=len(tok), seed=6)
    pol = policy_pass(policy, batch)
    refp = reference_pass(ref, batch, keep_logits=True)
    got = decoupled_sequence_logps(pol.logits, refp.logits, batch.input_ids, batch.response_mask, 0.0)
    assert torch.allclose(got, pol.logps.detach(), atol=1e-5)


def test_backward_graph_keeps_no_float32_copy_of_the_logits():
    """What autograd saves for backward: the bf16 logits themselves plus [N, T] float32, not [N, T, V] float32."""
    logits = torch.randn(2, 64, 1000, dtype=torch.bfloat16, requires_grad=True)
    ids = torch.randint(0, 1000, (2, 64))
    mask = torch.ones(2, 64, dtype=torch.bool)

    def saved_bytes(fn) -> int:
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return sum(seen.values())

    ours = saved_bytes(lambda: sequence_logps(logits, ids, mask, chunk_size=8))
    naive = saved_bytes(
        lambda: (torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:])
        .sum(-1)
    )
    logits_bytes = logits.numel() * logits.element_size()
    # The logits, plus [N, T]-sized float32 logsumexp, int64 targets and the bool mask.
    assert ours <= logits_bytes + 2 * 64 * (4 + 8 + 1)
    assert naive >= 2 * 63 * 1000 * 4  # the naive path keeps a float32 [N, T-1, V] log-softmax: twice the logits
