"""Parity with TRL's DPOTrainer (trl 1.16, the benchmark baseline): the same token ids from the same conversational
pairs, and TRL's first-step loss and metrics equal ours computed with logprobs.py and losses.py."""

from __future__ import annotations

import datasets
import pytest
import torch
import trl

from alignment_trainer.training import losses
from alignment_trainer.training.logprobs import build_pair_batch, policy_pass, reference_pass, split_pairs
from tiny import tiny_llama, tiny_tokenizer

PROMPTS = ["What colour is the sky?", "Two plus two?"]
CHOSEN = ["Blue.", "Four."]
REJECTED = ["Green, mostly.", "Five"]


def test_tokens_logps_and_first_step_metrics_match_trl(tmp_path):
    tok = tiny_tokenizer()
    policy, ref = tiny_llama(vocab_size=len(tok), seed=11), tiny_llama(vocab_size=len(tok), seed=12)
    rows = [
        {"prompt": [{"role": "user", "content": p}], "chosen": [{"role": "assistant", "content": c}],
         "rejected": [{"role": "assistant", "content": r}]}
        for p, c, r in zip(PROMPTS, CHOSEN, REJECTED, strict=True)
    ]
    config = trl.DPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=1, logging_steps=1, report_to=[],
        # bf16 explicitly off: transformers 5's TrainingArguments turn it on by default, even on CPU.
        use_cpu=True, bf16=False, save_strategy="no", beta=0.1, disable_tqdm=True,
    )
    trainer = trl.DPOTrainer(model=policy, ref_model=ref, args=config, train_dataset=datasets.Dataset.from_list(rows),
                             processing_class=tok)
    batch = build_pair_batch(tok, PROMPTS, CHOSEN, REJECTED, max_length=1024, strings="chat-template")
    for i, row in enumerate(trainer.train_dataset):
        mask = batch.attention_mask[i].bool()
        assert batch.input_ids[i][mask].tolist() == row["prompt_ids"] + row["chosen_ids"]
        mask = batch.attention_mask[2 + i].bool()
        assert batch.input_ids[2 + i][mask].tolist() == row["prompt_ids"] + row["rejected_ids"]

    with torch.no_grad():
        pc, pr = split_pairs(policy_pass(policy, batch).logps)
    rc, rr = split_pairs(reference_pass(ref, batch, keep_logits=False).logps)
    ours = losses.trl_metrics(0.1, pc, pr, rc, rr)
    trainer.train()
    theirs = trainer.state.log_history[0]
    for key, value in ours.items():
        assert theirs[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert theirs["loss"] == pytest.approx(losses.dpo(losses.margin(pc, pr, rc, rr), 0.1).mean().item(), rel=1e-5)
