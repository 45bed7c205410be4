"""What lets a job fit a real model (trainer.proto TrainingHyperparams): the weights' dtype, LoRA adapters through
peft, and activation offloading. Gradient checkpointing is transformers' own (job.py); logits only at response
positions are logprobs.py's; the reference log-prob cache is reference_cache.py's.

    dtype = resolve_dtype(h.dtype, device)                  # "auto": bf16 on a CUDA device that supports it
    model = apply_lora(model, h.lora, resume_dir)            # only the adapter's parameters require grad
    ref = AdapterDisabled(model)                             # the base model, no second copy of its weights
    with activation_offload(h.offload_activations, device):
        objective.step(...)
    final = merged(model)                                    # the adapter folded into the weights, for export
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch

from alignment_trainer.config import DTYPES, Hyperparams, LoraSettings, PreferenceTask
from alignment_trainer.training import job_inputs

_TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def resolve_dtype(option: str, device: torch.device) -> torch.dtype:
    """The weights' dtype for TrainingHyperparams.dtype: "fp32" and "bf16" as asked (bf16 on a CPU too: slower
    there, but allowed); "auto" = bf16 on a CUDA device with bf16 support, else fp32."""
    if option not in DTYPES:
        raise ValueError(f"spec.hparams.dtype: must be one of {', '.join(DTYPES)}, got {option!r}")
    if option == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return _TORCH_DTYPES[option]


def apply_lora(model, lora: LoraSettings, resume_dir: Path | None = None, adapter_subdir: str = "model"):
    """The base ``model`` wrapped in a peft LoRA model whose adapter is the only trainable part. With
    ``resume_dir`` the adapter is the resumable checkpoint's (checkpoints.py saves a PeftModel as its adapter)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if resume_dir is not None:
        return PeftModel.from_pretrained(model, resume_dir / adapter_subdir, is_trainable=True)
    targets = lora.target_modules
    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias="none",
                        task_type="CAUSAL_LM",
                        target_modules=targets[0] if targets == ("all-linear",) else list(targets))
    try:
        return get_peft_model(model, config)
    except ValueError as e:  # peft: a target module name matches nothing in the model
        raise ValueError(f"spec.hparams.lora.target_modules: {e}") from e


def is_lora(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


class AdapterDisabled:
    """The reference model of a LoRA job whose reference is its init checkpoint: the policy's own base weights,
    called with the adapter disabled (peft's ``disable_adapter``), so no second copy of the model exists. Not an
    nn.Module on purpose: ``.eval()`` or ``.to()`` on a reference must not reach the policy it shares weights with."""

    def __init__(self, peft_model) -> None:
        self._model = peft_model
        self.config = peft_model.config

    def __call__(self, **inputs):
        with self._model.disable_adapter():
            return self._model(**inputs)


def reference_for(task: PreferenceTask, policy, h: Hyperparams, *, resumed: bool, device: torch.device,
                  dtype: torch.dtype):
    """The frozen reference of a preference job: for a LoRA job whose reference is its init, the policy with the
    adapter disabled (also after a resume: the base weights never change); otherwise job_inputs.load_reference."""
    if h.lora is not None and task.reference.path == task.init.path:
        return AdapterDisabled(policy)
    return job_inputs.load_reference(task, policy, resumed=resumed, device=device, dtype=dtype)


def merged(model):
    """The model to write out: a LoRA model's base with the adapter merged into its weights (peft's
    merge_and_unload; the job's model is not used after this), any other model as it is."""
    return model.merge_and_unload() if is_lora(model) else model


def activation_offload(enabled: bool, device: torch.device):
    """While active, the tensors autograd saves for the backward pass are moved to CPU memory (pinned on CUDA, so
    the copies overlap with compute) and brought back when backward needs them: less accelerator memory, more
    host-device traffic. A no-op context when disabled."""
    if not enabled:
        return nullcontext()
    return torch.autograd.graph.save_on_cpu(pin_memory=device.type == "cuda")


__all__ = ["AdapterDisabled", "activation_offload", "apply_lora", "is_lora", "merged", "reference_for",
           "resolve_dtype"]
