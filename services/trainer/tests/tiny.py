"""A tiny Llama and a matching tokenizer, built in-process (nothing is downloaded), for tests of the trainer.

    tok = tiny_tokenizer()
    model = tiny_llama(vocab_size=len(tok))     # or tiny_llama() (vocab TINY_VOCAB_SIZE >= len(tok))

The tokenizer is a byte-level BPE trained on a few sentences: every byte is in the vocabulary, so any text
tokenises, and a few merges make it a real BPE. Its chat template is

    <|system|>…<|eos|><|user|>…<|eos|><|assistant|>…<|eos|>        (add_generation_prompt appends <|assistant|>)

so an assistant turn ends with the EOS token, as the trainer appends EOS to every response.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

PAD, EOS = "<|pad|>", "<|eos|>"
SPECIAL_TOKENS = (PAD, EOS, "<|system|>", "<|user|>", "<|assistant|>")  # ids 0..4 in this order

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|eos|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# 256 byte symbols + 5 special tokens + the merges the corpus below yields (< 59). Rounded up like real models pad
# their embedding matrices, so the model may have a few ids the tokenizer never emits.
TINY_VOCAB_SIZE = 320

_CORPUS = (
    "The sky is blue and the grass is green.",
    "Two plus two is four; three plus four is seven.",
    "What colour is the sky? The sky is blue.",
    "Answer the question briefly and politely.",
    "A preference pair has a prompt, a chosen and a rejected response.",
)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh byte-level BPE tokenizer with pad/eos tokens and a chat template (deterministic: same ids each call)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    wrapped.chat_template = CHAT_TEMPLATE
    assert len(wrapped) <= TINY_VOCAB_SIZE, len(wrapped)
    return wrapped


def tiny_llama(
    vocab_size: int = TINY_VOCAB_SIZE,
    hidden: int = 32,
    layers: int = 2,
    seed: int = 0,
    init_std: float = 0.2,
) -> LlamaForCausalLM:
    """A randomly initialised float32 LlamaForCausalLM; the same arguments give the same weights.

    init_std is larger than Llama's 0.02 so that next-token distributions are far from uniform: tests that compare
    two log-prob computations then discriminate. The global RNG state is left untouched.
    """
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=init_std,
        tie_word_embeddings=False,
        pad_token_id=SPECIAL_TOKENS.index(PAD),
        eos_token_id=SPECIAL_TOKENS.index(EOS),
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)
