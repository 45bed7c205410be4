"""bench/bench_dpo.py's --gpu path, shrunk with --tiny so it runs on a CPU: it must train both trainers and end with
the one-line JSON report (so the GPU run is ready for the GPU machine)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "bench_dpo.py"


def test_gpu_mode_at_tiny_size_reports_throughput_mfu_and_the_trl_baseline():
    proc = subprocess.run([sys.executable, str(BENCH), "--gpu", "--tiny"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["bench"] == "trainer-dpo-gpu-tiny" and last["metric"] == "tokens_per_second"
    assert last["value"] > 0 and last["baseline"] > 0
    # value and baseline are printed to 0.1 tokens/s, the ratio from the unrounded figures: it may differ from the
    # printed ones' ratio by what that rounding allows, and no more.
    slack = 0.05 / last["value"] + 0.05 / last["baseline"]
    assert abs(last["ratio"] - last["value"] / last["baseline"]) <= last["ratio"] * slack + 0.0005
    assert 0 < last["mfu"] < 1 and last["peak_flops"] == 790e12
    assert last["baseline_name"] == "trl.DPOTrainer" and last["measured_steps"] == 3
