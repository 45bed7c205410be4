"""A training job's resumable checkpoints (runner.py, step 4): ``<work_dir>/resume/step-N`` holds the model (with
its tokenizer; a LoRA job's adapter only, scaling.apply_lora reads it back onto the base) and ``state.pt``
(optimizer, scheduler, objective state, RNG, counters, metrics.jsonl length). Each is written through a temp dir and
a rename, and only the newest is kept.

With several processes (accelerate), ``step-N`` holds ``state.pt`` (objective state, counters, metrics.jsonl length)
and ``accelerate/``: accelerate's save_state of the prepared models (policy and reference), optimizer, scheduler
and every process's RNG state, which load_state restores into the same number of processes.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch

from alignment_trainer.training import export, reference_cache

RESUME_DIR = "resume"
STATE_FILE = "state.pt"
MODEL_DIR = "model"
ACCELERATE_DIR = "accelerate"


def latest_checkpoint(work_dir: Path) -> tuple[int, Path] | None:
    """(step, directory) of the newest complete resumable checkpoint under work_dir, if any. Temp dirs of an
    interrupted save are never named step-N (they are renamed only when complete), so they are not candidates."""
    root = Path(work_dir) / RESUME_DIR
    if not root.is_dir():
        return None
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file():
            try:
                found.append((int(p.name[len("step-"):]), p))
            except ValueError:
                continue
    return max(found) if found else None


def rng_state() -> dict:
    """Every random number generator a step draws from."""
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def restore_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def save_checkpoint(work_dir: Path, step: int, model, tokenizer, state: dict) -> None:
    """Writes the checkpoint of ``step`` completely, then removes every older one."""
    root = Path(work_dir) / RESUME_DIR
    with export.atomic_directory(root / f"step-{step:08d}") as tmp:
        model.save_pretrained(tmp / MODEL_DIR, safe_serialization=True)
        tokenizer.save_pretrained(tmp / MODEL_DIR)
        torch.save(state, tmp / STATE_FILE)
    for old in root.iterdir():
        if old.name != f"step-{step:08d}":
            shutil.rmtree(old, ignore_errors=True)


def save_distributed_checkpoint(accelerator, work_dir: Path, step: int, state: dict) -> None:
    """Collective (every process calls it): accelerate's save_state of every process into a temp dir, then the main
    process adds ``state`` and renames it to ``step-N`` (so a kill at any point leaves the previous checkpoint the
    newest complete one) and removes the older ones."""
    root = Path(work_dir) / RESUME_DIR
    name = f"step-{step:08d}"
    tmp = root / f".{name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / ACCELERATE_DIR))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        torch.save(state, tmp / STATE_FILE)
        shutil.rmtree(root / name, ignore_errors=True)
        os.rename(tmp, root / name)
        export.fsync_dir(root)
        for old in root.iterdir():
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_distributed_checkpoint(accelerator, resume_dir: Path) -> None:
    """Restores what save_distributed_checkpoint gave accelerate (collective under FSDP)."""
    accelerator.load_state(str(Path(resume_dir) / ACCELERATE_DIR))


def load_state(resume_dir: Path) -> dict:
    # weights_only=True: the state holds tensors, numbers and the python RNG tuple; nothing executable.
    return torch.load(resume_dir / STATE_FILE, map_location="cpu", weights_only=True)


def remove_checkpoints(work_dir: Path) -> None:
    """Once the job's outputs are written: the checkpoints hold the optimizer state, several times the model's size;
    the reference log-prob cache (reference_cache.py) goes with them."""
    shutil.rmtree(Path(work_dir) / RESUME_DIR, ignore_errors=True)
    reference_cache.remove(work_dir)


__all__ = ["ACCELERATE_DIR", "MODEL_DIR", "RESUME_DIR", "STATE_FILE", "latest_checkpoint", "load_state", "remove_checkpoints",
           "load_distributed_checkpoint", "restore_rng_state", "rng_state", "save_checkpoint",
           "save_distributed_checkpoint"]
