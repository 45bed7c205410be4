"""bench/gpu.sh at toy size (BENCH_TINY=1) on the CPU: the prepared GPU benchmark must run end to end and report its
figures in the last-line JSON, so the run on a GPU machine is one command."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

GPU_SH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "gpu.sh"


def test_gpu_sh_tiny_reports_dpo_wdro_logits_span_and_the_trl_status():
    env = {**os.environ, "BENCH_TINY": "1", "PYTHON": sys.executable, "OMP_NUM_THREADS": "2",
           "CUDA_VISIBLE_DEVICES": "", "PEAK_TFLOPS": "1"}
    proc = subprocess.run(["bash", str(GPU_SH)], capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["bench"] == "trainer-gpu-tiny" and last["device"] == "cpu" and last["measured_steps"] == 3
    assert last["peak_flops"] == 1e12 and last["peak_source"] == "env PEAK_TFLOPS" and last["mfu"] > 0
    for key in ("dpo_tokens_per_second", "dpo_full_logits_tokens_per_second", "wdro_tokens_per_second"):
        assert last[key] > 0, key
    # The ratio is taken before the two rates are rounded to 0.1 for the report, so it may differ in its last digit.
    ratio = last["wdro_tokens_per_second"] / last["dpo_tokens_per_second"]
    assert abs(last["wdro_to_dpo"] - ratio) <= 1e-3 + 1e-3 * ratio
    assert last["dro_call_seconds_per_step"] > 0 and 0 < last["dro_call_pct_of_step"] < 100
    span = last["logits_span"]
    assert span["logit_positions_response"] < span["logit_positions_full"]
    assert span["saved_bytes_response"] < span["saved_bytes_full"] and span["speedup"] > 0
    try:
        import trl  # noqa: F401
    except ImportError:
        assert last["trl"] == "trl not installed"
    else:
        assert last["trl"]["tokens_per_second"] > 0
