"""The unmerged, cumulative LoRA adapter a LoRA job writes to <hf_checkpoint>/adapter for an inference engine that
serves pi_init (engine_adapter.py): pi_init with round t's adapter is the model round t trained (merged), also when
round t trained on pi_{t-1} and the rounds target different modules."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from alignment_trainer.config import Artifact, LoraSettings
from alignment_trainer.training import engine_adapter, scaling
from tiny import tiny_llama

IDS = torch.tensor([[1, 5, 9, 14, 3, 22, 7, 2]])


def _randomise(model, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _round(init_dir, out_dir, lora: LoraSettings, seed: int) -> torch.Tensor:
    """One LoRA 'job' from the checkpoint at init_dir: its merged checkpoint and adapter at out_dir, its logits."""
    model = scaling.apply_lora(AutoModelForCausalLM.from_pretrained(init_dir), lora)
    _randomise(model, seed)
    write = engine_adapter.cumulative_adapter(model, SimpleNamespace(init=Artifact(init_dir)))
    merged = scaling.merged(model)
    merged.save_pretrained(out_dir)
    write(out_dir)
    return _logits(merged)


def _on_init(init_dir, adapter_dir) -> torch.Tensor:
    return _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(init_dir), adapter_dir).eval())


def test_round_t_adapter_on_pi_init_is_round_t_model(tmp_path):
    tiny_llama().save_pretrained(tmp_path / "init")
    pi0 = _round(tmp_path / "init", tmp_path / "r0", LoraSettings(rank=2, alpha=4.0), seed=1)
    pi1 = _round(tmp_path / "r0", tmp_path / "r1", LoraSettings(rank=3, alpha=5.0, target_modules=("q_proj", "v_proj")), seed=2)
    base = _logits(AutoModelForCausalLM.from_pretrained(tmp_path / "init"))
    assert (pi1 - base).abs().max() > 1e-1  # the adapters change the model: the comparisons below discriminate

    assert torch.allclose(_on_init(tmp_path / "init", tmp_path / "r0" / "adapter"), pi0, atol=1e-4)
    # Round 1 trained on pi_0; its adapter, written on pi_init, stacks round 0's (all-linear, rank 2) and its own.
    on_init = _on_init(tmp_path / "init", tmp_path / "r1" / "adapter")
    assert (on_init - pi1).abs().max() < 1e-4  # float32 rounding of two merges against one stacked product
    config = json.loads((tmp_path / "r1" / "adapter" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (5, 5)
    assert {"q_proj", "v_proj", "down_proj"} <= set(config["target_modules"])


def test_a_lora_job_writes_its_adapter_in_the_checkpoint_and_its_manifest(tmp_path):
    from alignment_trainer.config import Hyperparams, JobConfig, PreferenceTask
    from alignment_trainer.training import export, runner
    from world import build_world

    world = build_world(tmp_path / "world", n_pairs=8)
    task = PreferenceTask(init=Artifact(world.checkpoint), reference=Artifact(world.checkpoint), pairs=Artifact(world.pairs), loss="dpo")
    hp = Hyperparams(learning_rate=5e-3, batch_size=4, epochs=1, max_length=64, warmup_ratio=0.0, lora=LoraSettings(rank=2, alpha=4.0))
    out = runner.run_job(JobConfig(task=task, output_dir=tmp_path / "out", hparams=hp, export_onnx=False), tmp_path / "w")
    ckpt = out.hf_checkpoint.path
    assert (ckpt / "adapter" / "adapter_model.safetensors").is_file()
    listed = {f["path"] for f in json.loads((ckpt / export.MANIFEST).read_text())["files"]}
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= listed
    trained = _logits(AutoModelForCausalLM.from_pretrained(ckpt))
    assert (trained - _logits(AutoModelForCausalLM.from_pretrained(world.checkpoint))).abs().max() > 1e-4
    assert (_on_init(world.checkpoint, ckpt / "adapter") - trained).abs().max() < 1e-4
