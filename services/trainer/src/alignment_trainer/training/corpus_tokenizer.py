"""A tokenizer trained on a corpus, for base models trained from scratch (the toy worlds' SFT models).

    python -m alignment_trainer.cli tokenizer --corpus sft.jsonl --output DIR [--vocab-size 1024]

Byte-level BPE: every byte is in the vocabulary, so any text tokenises and decodes back exactly, and merges learned
from the corpus give about one token per frequent word. Special tokens (ids 0..4) and the chat template

    <|system|>…<|eos|><|user|>…<|eos|><|assistant|>…<|eos|>        (add_generation_prompt appends <|assistant|>)

make an assistant turn end with EOS, as the trainer appends EOS to every response. The result is a directory
PreTrainedTokenizerFast.from_pretrained loads (tokenizer.json, tokenizer_config.json with the chat template), as
the generator and judge (@huggingface/tokenizers) do. The same corpus and vocabulary size give the same tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, EOS = "<|pad|>", "<|eos|>"
SPECIAL_TOKENS = (PAD, EOS, "<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|eos|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)


def corpus_texts(path: Path) -> Iterator[str]:
    """Every string field of every JSONL line (prompt, response, chosen, rejected, ...)."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            yield from (v for v in record.values() if isinstance(v, str))


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be at least {MIN_VOCAB_SIZE} (bytes and special tokens), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_corpus_tokenizer(corpus: Path, output: Path, vocab_size: int) -> PreTrainedTokenizerFast:
    """Trains on `corpus` (JSONL) and saves to `output` (written whole: a temporary sibling renamed at the end)."""
    tokenizer = train_tokenizer(corpus_texts(corpus), vocab_size)
    tmp = output.with_name(f".{output.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(output)
    return tokenizer
