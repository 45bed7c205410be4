#!/usr/bin/env bash
# The trainer's GPU benchmark in one command, for any machine with an NVIDIA GPU and the trainer's Python packages
# (torch, transformers, peft, tokenizers: requirements-train.txt). No downloads, no network: the ~0.5B Llama is
# random-init from a config. Runs in well under 10 minutes on an H100/H200; the last stdout line is one JSON object
# (bench_gpu.py documents its fields: MFU against the card's dense bf16 peak, DPO vs W-DRO tokens/s and the DRO
# call's share of a step, full vs response-only logits, TRL's DPOTrainer when trl is importable).
#
#   bash services/trainer/bench/gpu.sh                 the GPU run
#   BENCH_TINY=1 bash services/trainer/bench/gpu.sh    the same path at toy size (a CPU will do; tests use it)
#   PEAK_TFLOPS=989 ...                                the peak to compute MFU against, if the card is not in the table
#   PYTHON=/path/to/python ...                         the interpreter (default python3; never builds a venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [[ -z "${BENCH_TINY:-}" ]]; then
  "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu.sh: no CUDA device (BENCH_TINY=1 for the toy run)")'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
fi
exec timeout "${BENCH_TIMEOUT_S:-570}" "$py" "$here/bench_gpu.py"
