"""The unmerged LoRA adapter a LoRA job writes beside its merged checkpoint, for an inference engine that serves
pi_init and loads each round's policy as an adapter on it (coordinator.proto EngineWeights.ENGINE_WEIGHTS_LORA_ADAPTER,
vLLM's /v1/load_lora_adapter).

A round trains its adapter on its init checkpoint, pi_{t-1}, not on pi_init. So the adapter written is cumulative:
the init checkpoint's own ``adapter/`` (pi_{t-1} as an adapter on pi_init; none for pi_init itself) with this job's
appended. LoRA's update is a sum of low-rank products, so stacking the factors is exact:

    s0 B0 A0 + s1 B1 A1 = [s0 B0 | s1 B1] [A0 ; A1]        (s = lora_alpha / r)

and the result is written with lora_alpha = r (scale 1), of rank r0 + r1. A module one of the two adapters does not
target contributes zero factors. Written in peft's layout (adapter_config.json, adapter_model.safetensors).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ADAPTER_DIR = "adapter"  # under the job's hf_checkpoint directory
_CONFIG = "adapter_config.json"
_WEIGHTS = "adapter_model.safetensors"


def _scale(config: dict) -> float:
    r = int(config["r"])
    return float(config["lora_alpha"]) / (math.sqrt(r) if config.get("use_rslora") else r)


def _factors(config: dict, weights: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module key -> (A, s B) in float32."""
    s = _scale(config)
    out = {}
    for key, a in weights.items():
        if key.endswith(".lora_A.weight"):
            module = key[: -len(".lora_A.weight")]
            out[module] = (a.float(), s * weights[f"{module}.lora_B.weight"].float())
    return out


def _this_job(peft_model) -> tuple[dict, dict[str, torch.Tensor]]:
    from peft import get_peft_model_state_dict

    config = peft_model.peft_config["default"].to_dict()
    weights = {k: v.detach().cpu() for k, v in get_peft_model_state_dict(peft_model).items()}
    return config, weights


def _init_dir(task) -> Path | None:
    """The checkpoint a job starts from: a preference job's init, an SFT job's checkpoint (None: from scratch)."""
    init = getattr(task, "init", None) or getattr(task, "checkpoint", None)
    return init.path if init is not None else None


def cumulative_adapter(peft_model, task):
    """A writer of ``<checkpoint>/adapter`` (for export.save_hf_checkpoint's ``extra``): the adapter of the job's init
    checkpoint with this job's appended. Reads the adapter now, before the model is merged (merging folds it away)."""
    config, weights = _this_job(peft_model)
    init_dir = _init_dir(task)
    dtype = next(iter(weights.values())).dtype
    factors = [_factors(config, weights)]
    previous = init_dir / ADAPTER_DIR if init_dir is not None else None
    if previous is not None and (previous / _CONFIG).is_file():
        factors.insert(0, _factors(json.loads((previous / _CONFIG).read_text()), load_file(previous / _WEIGHTS)))

    modules = sorted(set().union(*factors))
    shapes = {}  # module -> (in, out) from whichever adapter targets it
    for f in factors:
        for m, (a, b) in f.items():
            shapes[m] = (a.shape[1], b.shape[0])
    ranks = [next(iter(f.values()))[0].shape[0] for f in factors]
    stacked = {}
    for m in modules:
        a_parts, b_parts = [], []
        for f, r in zip(factors, ranks):
            a, b = f.get(m, (torch.zeros(r, shapes[m][0]), torch.zeros(shapes[m][1], r)))
            a_parts.append(a)
            b_parts.append(b)
        stacked[f"{m}.lora_A.weight"] = torch.cat(a_parts, 0).to(dtype).contiguous()
        stacked[f"{m}.lora_B.weight"] = torch.cat(b_parts, 1).to(dtype).contiguous()
    rank = sum(ranks)
    targets = sorted({m.rsplit(".", 1)[-1] for m in modules})
    out_config = {**config, "r": rank, "lora_alpha": rank, "use_rslora": False, "target_modules": targets,
                  "rank_pattern": {}, "alpha_pattern": {}, "lora_dropout": 0.0, "inference_mode": True}
    out_config = {k: (sorted(v) if isinstance(v, set) else v) for k, v in out_config.items()}

    def write(checkpoint_dir: Path) -> None:
        dest = checkpoint_dir / ADAPTER_DIR
        dest.mkdir()
        save_file(stacked, dest / _WEIGHTS)
        (dest / _CONFIG).write_text(json.dumps(out_config, indent=2, sort_keys=True, default=str) + "\n")

    return write


__all__ = ["ADAPTER_DIR", "cumulative_adapter"]
