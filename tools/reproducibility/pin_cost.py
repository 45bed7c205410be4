"""What each of the trainer's reproducibility pins (services/trainer/src/alignment_trainer/cpu_env.py) costs in speed,
as a ratio against the machine's native kernels in the same run.

    "$(bash tools/python/venv.sh)/bin/python" tools/reproducibility/pin_cost.py [--steps 150] [--repeats 3]

Each setting trains the demo's CPU-scale Llama (hidden 96, 3 layers, vocabulary 1024) for --steps optimizer steps (after 3 untimed warm-up steps) of
batch 32 × 96 tokens on fixed random tokens, in a fresh process (the pins are read when torch first computes), with
the same thread count for every setting. Settings run in turn, --repeats rounds, so drift of the machine's speed
touches all of them alike; the figure is the median seconds per setting and its ratio to `native`. Prints a table
and, last, one JSON line {"setting": {"seconds": s, "ratio": r, "sha256": first 12 hex digits of the weights}}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS: dict[str, dict[str, str]] = {
    "native": {"ALIGNMENT_CPU_PINS": "off"},
    "aten=avx2": {"ALIGNMENT_CPU_PINS": "off", "ATEN_CPU_CAPABILITY": "avx2"},
    "aten=default": {"ALIGNMENT_CPU_PINS": "off", "ATEN_CPU_CAPABILITY": "default"},
    "mkl=AVX2,STRICT": {"ALIGNMENT_CPU_PINS": "off", "MKL_CBWR": "AVX2,STRICT"},
    "mkl=COMPATIBLE": {"ALIGNMENT_CPU_PINS": "off", "MKL_CBWR": "COMPATIBLE"},
    "deterministic": {"ALIGNMENT_CPU_PINS": "off", "PIN_COST_DETERMINISTIC": "1"},
    "all pins (trainer default)": {"PIN_COST_DETERMINISTIC": "1"},
}

WORKER = r"""
import hashlib, os, sys, time
sys.path.insert(0, os.environ["TRAINER_SRC"])
import alignment_trainer  # applies the pins unless ALIGNMENT_CPU_PINS=off
import torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.set_num_threads(int(os.environ["PIN_COST_THREADS"]))
if os.environ.get("PIN_COST_DETERMINISTIC") == "1":
    torch.use_deterministic_algorithms(True, warn_only=True)
torch.manual_seed(1)
config = LlamaConfig(vocab_size=1024, hidden_size=96, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=384, max_position_embeddings=128)
model = LlamaForCausalLM(config)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
tokens = torch.randint(0, 1024, (32, 96), generator=torch.Generator().manual_seed(2))
def step():
    loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
for _ in range(3):  # warm-up: allocator, first-call dispatch
    step()
started = time.perf_counter()
for _ in range(int(os.environ["PIN_COST_STEPS"])):
    step()
seconds = time.perf_counter() - started
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()[:12]
print(seconds, digest, torch.backends.cpu.get_cpu_capability())
"""


def run(setting: dict[str, str], steps: int, threads: int, trainer_src: str) -> tuple[float, str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "ALIGNMENT_CPU_PINS")}
    env.update(setting, TRAINER_SRC=trainer_src, PIN_COST_STEPS=str(steps), PIN_COST_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=True)
    seconds, digest, capability = out.stdout.split()
    return float(seconds), digest, capability


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every setting (default 1)")
    args = parser.parse_args()
    trainer_src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../services/trainer/src")
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    digests: dict[str, str] = {}
    levels: dict[str, str] = {}
    for repeat in range(args.repeats):
        for name, setting in SETTINGS.items():
            seconds, digests[name], levels[name] = run(setting, args.steps, args.threads, trainer_src)
            times[name].append(seconds)
            print(f"round {repeat + 1}: {name:28s} {seconds:7.2f} s", file=sys.stderr)
    base = statistics.median(times["native"])
    result = {}
    print(f"{'setting':28s} {'level':8s} {'median s':>9s} {'ratio':>6s}  weights")
    for name in SETTINGS:
        median = statistics.median(times[name])
        result[name] = {"seconds": round(median, 3), "ratio": round(median / base, 3), "sha256": digests[name]}
        print(f"{name:28s} {levels[name]:8s} {median:9.2f} {median / base:6.3f}  {digests[name]}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
