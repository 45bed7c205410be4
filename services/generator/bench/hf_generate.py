"""Baseline of the generator benchmark: Hugging Face `generate` (PyTorch, CPU) on the same model, prompts, batch and
sampling parameters as services/generator/bench/bench.ts, which runs this script once per repetition.

    python hf_generate.py CHECKPOINT_DIR PROMPTS_JSON N MAX_NEW_TOKENS

Prompts go through the chat template exactly as the generator renders them, are left-padded into one batch, and
each is sampled N times (num_return_sequences). Prints one JSON line: generated tokens (EOS included, padding after
it excluded, as the generator counts them), seconds, tokens per second. One untimed warm-up call comes first.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    checkpoint, prompts_json, n, max_new = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    # BENCH_THREADS is set by bench.ts for both sides (default: every core).
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS") or os.cpu_count() or 1))
    prompts = json.loads(prompts_json)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             for p in prompts]
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    # The generator's parameters: temperature 0.7, top_p 1, no top-k (transformers would default to top_k 50).
    kwargs = dict(do_sample=True, temperature=0.7, top_p=1.0, top_k=0, num_return_sequences=n,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=4, **kwargs)
        torch.manual_seed(0)
        started = time.perf_counter()
        out = model.generate(**batch, max_new_tokens=max_new, **kwargs)
        seconds = time.perf_counter() - started
    new = out[:, batch["input_ids"].shape[1]:]
    eos = tokenizer.eos_token_id
    tokens = 0
    for row in new.tolist():
        tokens += row.index(eos) + 1 if eos in row else len(row)
    print(json.dumps({"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds}))


if __name__ == "__main__":
    main()
