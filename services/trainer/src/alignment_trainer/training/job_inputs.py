"""A training job's inputs (runner.py, steps 1-2): the artifacts checked against their sha256, the policy and its
tokenizer built or loaded, the frozen reference loaded, and the dataset tokenised.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch

from alignment_trainer.config import JobConfig, PreferenceTask, SftTask
from alignment_trainer.training import data, export
from alignment_trainer.training.checkpoints import MODEL_DIR
from alignment_trainer.training.logprobs import tokenize_pair

log = logging.getLogger("alignment_trainer.runner")


def verify_inputs(config: JobConfig) -> None:
    """Every input artifact exists and has the sha256 the spec names (when it names one)."""
    task = config.task
    if isinstance(task, SftTask):
        refs = [("spec.sft.dataset", task.dataset)]
        if task.checkpoint:
            refs.append(("spec.sft.checkpoint", task.checkpoint))
        else:
            refs.append(("spec.sft.architecture.tokenizer", task.architecture.tokenizer))
    else:
        refs = [("spec.preference.init", task.init), ("spec.preference.reference", task.reference),
                ("spec.preference.pairs", task.pairs)]
    for name, art in refs:
        export.verify_artifact(art.path, art.sha256, name)


def load_policy(config: JobConfig, resume_dir: Path | None, dtype: torch.dtype = torch.float32):
    """(model, tokenizer): the policy from the resumable checkpoint, a Llama from the spec's architecture (seeded)
    or the task's checkpoint, in ``dtype`` (scaling.resolve_dtype) on the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    task = config.task
    if isinstance(task, SftTask) and task.architecture is not None:
        tokenizer = AutoTokenizer.from_pretrained(task.architecture.tokenizer.path)
    else:
        tokenizer = AutoTokenizer.from_pretrained(task.checkpoint.path if isinstance(task, SftTask)
                                                  else task.init.path)
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token: responses must end with EOS")
    if resume_dir is not None:
        model = AutoModelForCausalLM.from_pretrained(resume_dir / MODEL_DIR, dtype=dtype)
    elif isinstance(task, SftTask) and task.architecture is not None:
        a = task.architecture
        cfg = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=a.hidden_size, intermediate_size=a.intermediate_size,
            num_hidden_layers=a.num_layers, num_attention_heads=a.num_attention_heads,
            num_key_value_heads=a.num_key_value_heads or a.num_attention_heads,
            max_position_embeddings=a.max_position_embeddings,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
        # Seeded here, right before the weights are drawn: the same spec gives the same initial model.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.hparams.seed)
            model = LlamaForCausalLM(cfg).to(dtype)
    else:
        path = task.checkpoint.path if isinstance(task, SftTask) else task.init.path
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if model.config.vocab_size < len(tokenizer):
        raise ValueError(f"model vocab_size {model.config.vocab_size} < tokenizer size {len(tokenizer)}")
    return model, tokenizer


def load_reference(task: PreferenceTask, policy, resumed: bool, device: torch.device,
                   dtype: torch.dtype = torch.float32):
    """The frozen reference model on ``device``, in ``dtype``."""
    from transformers import AutoModelForCausalLM

    if task.reference.path == task.init.path and not resumed:
        ref = copy.deepcopy(policy)  # the same weights without reading them twice
    else:
        ref = AutoModelForCausalLM.from_pretrained(task.reference.path, dtype=dtype)
    if ref.config.vocab_size != policy.config.vocab_size:
        raise ValueError(f"reference vocab_size {ref.config.vocab_size} != policy's {policy.config.vocab_size}")
    ref.to(device).eval()
    ref.requires_grad_(False)
    return ref


def tokenize_examples(config: JobConfig, tokenizer) -> tuple[list, list[int], int, list[float | None]]:
    """Tokenises the dataset once: (examples, their lengths in tokens, how many were dropped, and for preference
    jobs each kept pair's SPA-judge margin or None, data.PreferencePair.judge_margin). An example is a
    (prompt_ids, response_ids) pair for SFT, a TokenizedPair for preference jobs."""
    task = config.task
    max_length = config.hparams.max_length
    examples, lengths, dropped = [], [], 0
    judge_margins: list[float | None] = []
    if isinstance(task, SftTask):
        path = task.dataset.path
        sft = data.load_sft(path)
        data.require_chat_template(tokenizer, path, [ex.prompt for ex in sft], encoding=task.prompt_encoding,
                                   encoding_field="spec.sft.prompt_encoding")
        for ex in sft:
            if ex.prompt is None:  # {"text"}: raw text
                prompt_ids, response_ids = data.text_example_ids(tokenizer, ex.response)
            else:
                # tokenize_pair encodes the prompt exactly as preference batches and the generator do; the
                # response is passed as both sides of the pair and read back once.
                t = tokenize_pair(tokenizer, ex.prompt, ex.response, ex.response, strings=task.prompt_encoding)
                prompt_ids, response_ids = t.prompt_ids, t.chosen_ids
            if len(prompt_ids) >= max_length:
                dropped += 1
                continue
            examples.append((prompt_ids, response_ids))
            lengths.append(min(max_length, len(prompt_ids) + len(response_ids)))
    else:
        path = task.pairs.path
        pairs = data.load_pairs(path)
        data.require_chat_template(tokenizer, path, [pair.prompt for pair in pairs], encoding=task.prompt_encoding,
                                   encoding_field="spec.preference.prompt_encoding")
        for pair in pairs:
            t = tokenize_pair(tokenizer, pair.prompt, pair.chosen, pair.rejected, strings=task.prompt_encoding,
                              chosen_finished=pair.chosen_finished, rejected_finished=pair.rejected_finished)
            if len(t.prompt_ids) >= max_length:
                dropped += 1
                continue
            examples.append(t)
            lengths.append(min(max_length, len(t.prompt_ids) + max(len(t.chosen_ids), len(t.rejected_ids))))
            judge_margins.append(pair.judge_margin)
    if not examples:
        raise data.DatasetError(path, 0, f"every example's prompt fills max_length ({max_length} tokens) "
                                         "once encoded; raise spec.hparams.max_length")
    if dropped:
        log.warning("dropped examples whose prompt fills max_length",
                    extra={"fields": {"dropped": dropped, "max_length": max_length}})
    return examples, lengths, dropped, judge_margins


__all__ = ["load_policy", "load_reference", "tokenize_examples", "verify_inputs"]
