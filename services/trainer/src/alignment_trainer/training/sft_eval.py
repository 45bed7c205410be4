"""Validation loss of an SFT job (trainer.proto SftJob.eval_fraction): a seeded slice of the tokenised examples is
held out of training, and after the last step of every epoch (and after the job's last step) the policy's mean
negative log-likelihood of their response tokens, token-weighted as the training loss, is reported as ``eval/loss``
(metrics.jsonl, the step's StepReport, the job's final metrics). Preference jobs hold nothing out.
"""

from __future__ import annotations

import math
import random

import torch

from alignment_trainer.config import Hyperparams, JobConfig, SftTask
from alignment_trainer.training.logprobs import token_logps
from alignment_trainer.training.objectives import autocast_context, collate_sft

Example = tuple[list[int], list[int]]


def split_held_out(config: JobConfig, examples: list, lengths: list[int]) -> tuple[list, list, list[int]]:
    """(held-out examples, training examples, training lengths). floor(eval_fraction · n) examples, drawn with the
    job's seed, are held out; none when that is 0 or would leave nothing to train on."""
    task = config.task
    if not isinstance(task, SftTask):
        return [], examples, lengths
    n_eval = math.floor(task.eval_fraction * len(examples))
    if n_eval == 0 or n_eval >= len(examples):
        return [], examples, lengths
    held = set(random.Random(config.hparams.seed).sample(range(len(examples)), n_eval))
    keep = [i for i in range(len(examples)) if i not in held]
    return [examples[i] for i in sorted(held)], [examples[i] for i in keep], [lengths[i] for i in keep]


@torch.no_grad()
def eval_loss(model, held_out: list[Example], pad_id: int, h: Hyperparams, device: torch.device) -> float:
    """Mean NLL per response token of ``held_out`` under ``model`` (dropout off while it runs). Every process of a
    distributed job evaluates the whole slice (each forward is collective under FSDP), so all agree on the value."""
    was_training = model.training
    model.eval()
    nll, tokens = 0.0, 0
    try:
        for start in range(0, len(held_out), h.micro_batch_size):
            batch = collate_sft(held_out[start:start + h.micro_batch_size], pad_token_id=pad_id,
                                max_length=h.max_length).to(device)
            with autocast_context(device, h.bf16):
                logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
            mask = batch.response_mask[:, 1:]
            nll -= float((token_logps(logits, batch.input_ids) * mask).sum())
            tokens += int(mask.sum())
    finally:
        model.train(was_training)
    return nll / tokens


__all__ = ["eval_loss", "split_held_out"]
