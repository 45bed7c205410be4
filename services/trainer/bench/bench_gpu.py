"""The trainer on one NVIDIA GPU (bench/gpu.sh runs it): a random-init ~0.5B Llama built from a config (nothing is
downloaded), bf16 weights, and per configuration the tokens per second over the steps after WARMUP_STEPS:

  * ``dpo``: plain DPO, logits at response positions only (the default), and its MFU against the card's dense
    bf16 peak (PEAK_TFLOPS, or the table below by device name; none known = no MFU);
  * ``dpo_full_logits``: the same with TrainingHyperparams.full_logits (the LM head over every position);
  * ``wdro``: the W-DRO loss with one adversary call per step, and that call's share of the step time. The adversary
    is the in-process exact solver (exact_adversary.py, a port of the DroSolver's), so the share is the solve itself,
    without the gRPC hop of a deployed DroSolver;
  * TRL's DPOTrainer on the same model and pairs, only when ``trl`` is importable ("trl not installed" otherwise).

Also the logits-span effect in isolation: one policy forward + backward on a micro-batch, full logits against
response-only, wall time and bytes autograd saves for the backward pass (plus peak CUDA memory on a GPU).

    BENCH_TINY=1 python services/trainer/bench/bench_gpu.py      toy sizes: the same code path on a CPU in seconds

FLOPs per token for MFU are bench_dpo.py's (8·N + 16·L·d·T: policy forward+backward, reference forward, attention),
counted for the full model whatever the logits option saves. The last line of stdout is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_dpo import (  # noqa: E402  (bench_dpo puts src/ and tests/ on sys.path)
    BETA,
    LEARNING_RATE,
    SIZES,
    WARMUP_STEPS,
    _sync,
    bench_trl,
    build_checkpoint,
    make_pairs,
    throughput,
)
from tiny import tiny_tokenizer  # noqa: E402

from alignment_trainer.config import Artifact, Hyperparams, JobConfig, PreferenceTask, WdroSettings  # noqa: E402
from alignment_trainer.training import runner  # noqa: E402
from alignment_trainer.training.exact_adversary import ExactAdversary  # noqa: E402
from alignment_trainer.training.logprobs import (  # noqa: E402
    collate_pairs,
    forward_logits,
    sequence_logps,
    tokenize_pair,
)

# Dense (no sparsity) bf16 tensor-core peaks, FLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16 = (("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12), ("A10G", 125e12))


def peak_flops(device_name: str) -> tuple[float | None, str]:
    """(peak FLOP/s, where it came from): $PEAK_TFLOPS wins, then the table, else (None, "unknown")."""
    env = os.environ.get("PEAK_TFLOPS")
    if env:
        return float(env) * 1e12, "env PEAK_TFLOPS"
    for key, value in PEAK_BF16:
        if key in device_name:
            return value, f"table ({key} SXM dense bf16)" if key in ("H100", "H200") else f"table ({key})"
    return None, "unknown"


class TimedAdversary(ExactAdversary):
    """The exact adversary, timing every solve (the per-step DRO call)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def solve(self, log_xi, **kwargs):
        start = time.perf_counter()
        try:
            return super().solve(log_xi, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - start)


def run(ckpt: Path, pairs_path: Path, size: dict, steps: int, work: Path, device: torch.device, *, loss: str,
        full_logits: bool = False, adversary: TimedAdversary | None = None) -> tuple[float, float, float]:
    """(tokens per second, seconds per step, tokens per step) of one job after warm-up."""
    samples: list[tuple[float, float, float]] = []

    def on_step(report: runner.StepReport) -> None:
        _sync(device)
        samples.append((time.perf_counter(), time.process_time(), report.metrics["num_tokens"]))

    task = PreferenceTask(init=Artifact(ckpt), reference=Artifact(ckpt), pairs=Artifact(pairs_path), loss=loss,
                          beta=BETA, wdro=WdroSettings(delta=1e-3, rho=0.3) if loss == "wdro" else None)
    config = JobConfig(task=task, output_dir=work / "out", hparams=Hyperparams(
        learning_rate=LEARNING_RATE, batch_size=size["batch"], max_steps=steps, max_length=2048,
        bf16=device.type == "cuda", full_logits=full_logits))
    runner.run_job(config, work / "work", runner.RunHooks(on_step=on_step), device=device,
                   connect_adversary=(lambda _address: adversary) if adversary is not None else None)
    tps, _ = throughput(samples)
    step_seconds = (samples[-1][0] - samples[WARMUP_STEPS - 1][0]) / (len(samples) - WARMUP_STEPS)
    return tps, step_seconds, samples[-1][2] / len(samples)


def logits_span(ckpt: Path, pairs: list[dict], size: dict, device: torch.device) -> dict:
    """One policy forward + backward on one micro-batch, full logits against response-only (best of 3 each)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=dtype).to(device).train()
    tokenized = [tokenize_pair(tok, p["prompt"], p["chosen"], p["rejected"], strings="chat-template") for p in pairs[:size["batch"]]]
    out = {}
    for name, only in (("full", False), ("response", True)):
        batch = collate_pairs(tokenized, pad_token_id=tok.pad_token_id, max_length=2048,
                              response_logits_only=only).to(device)
        best, saved_bytes, peak = float("inf"), 0, None
        for _ in range(3):
            model.zero_grad(set_to_none=True)
            saved: list[int] = []

            def pack(t, saved=saved):
                saved.append(t.numel() * t.element_size())
                return t

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            _sync(device)
            start = time.perf_counter()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                logps = sequence_logps(forward_logits(model, batch), batch.input_ids, batch.response_mask)
            logps.sum().backward()
            _sync(device)
            best = min(best, time.perf_counter() - start)
            saved_bytes = sum(saved)
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated()
        out[name] = {"seconds": best, "saved_bytes": saved_bytes, "peak_bytes": peak,
                     "logit_positions": batch.input_ids.shape[1] - batch.logits_from}
    del model
    f, r = out["full"], out["response"]
    return {"full_logits_seconds": round(f["seconds"], 5), "response_logits_seconds": round(r["seconds"], 5),
            "speedup": round(f["seconds"] / r["seconds"], 3),
            "saved_bytes_full": f["saved_bytes"], "saved_bytes_response": r["saved_bytes"],
            "saved_bytes_ratio": round(r["saved_bytes"] / f["saved_bytes"], 3),
            "peak_bytes_ratio": None if f["peak_bytes"] is None else round(r["peak_bytes"] / f["peak_bytes"], 3),
            "logit_positions_full": f["logit_positions"], "logit_positions_response": r["logit_positions"]}


def main() -> dict:
    tiny = os.environ.get("BENCH_TINY", "") not in ("", "0")
    size = SIZES["gpu-tiny" if tiny else "gpu"]
    steps = WARMUP_STEPS + int(os.environ.get("BENCH_STEPS") or (size["steps"] if tiny else 30))
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if not tiny and device.type != "cuda":
        raise SystemExit("bench_gpu.py needs CUDA (BENCH_TINY=1 runs the same path at toy size on a CPU)")
    torch.backends.cuda.matmul.allow_tf32 = True
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak, peak_source = peak_flops(name)
    tokenizer = tiny_tokenizer()
    pairs = make_pairs(size["batch"] * steps, size["prompt_words"], size["response_words"])
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        work = Path(tmp)
        ckpt = work / "init"
        n_matmul = build_checkpoint(size, tokenizer, ckpt)
        pairs_path = work / "pairs.jsonl"
        pairs_path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        span = logits_span(ckpt, pairs, size, device)
        print(f"logits span: {span}", file=sys.stderr)
        dpo, dpo_step, tokens_per_step = run(ckpt, pairs_path, size, steps, work / "dpo", device, loss="dpo")
        print(f"dpo: {dpo:,.0f} tokens/s", file=sys.stderr)
        full, _, _ = run(ckpt, pairs_path, size, steps, work / "full", device, loss="dpo", full_logits=True)
        print(f"dpo, full logits: {full:,.0f} tokens/s", file=sys.stderr)
        adversary = TimedAdversary()
        wdro, wdro_step, _ = run(ckpt, pairs_path, size, steps, work / "wdro", device, loss="wdro",
                                 adversary=adversary)
        dro_call = sum(adversary.seconds[WARMUP_STEPS:]) / max(1, len(adversary.seconds) - WARMUP_STEPS)
        print(f"wdro: {wdro:,.0f} tokens/s, DRO call {dro_call * 1e3:.2f} ms/step", file=sys.stderr)
        try:
            import trl  # noqa: F401
            trl_tps = bench_trl(ckpt, pairs, size, steps, 2048, device.type == "cuda", work / "trl", device)
            trl_result = None if trl_tps is None else {"tokens_per_second": round(trl_tps[0], 1),
                                                       "ratio_ours_to_trl": round(dpo / trl_tps[0], 3)}
        except ImportError:
            trl_result = "trl not installed"

    mean_len = tokens_per_step / (2 * size["batch"])
    flops_per_token = 8 * n_matmul + 16 * size["layers"] * size["hidden"] * mean_len
    result = {
        "bench": "trainer-gpu-tiny" if tiny else "trainer-gpu",
        "device": name,
        "dtype": "bf16" if device.type == "cuda" else "fp32",
        "params_matmul": n_matmul,
        "pairs_per_step": size["batch"],
        "measured_steps": steps - WARMUP_STEPS,
        "mean_sequence_tokens": round(mean_len, 1),
        "peak_flops": peak,
        "peak_source": peak_source,
        "dpo_tokens_per_second": round(dpo, 1),
        "mfu": None if peak is None else float(f"{dpo * flops_per_token / peak:.4g}"),
        "dpo_full_logits_tokens_per_second": round(full, 1),
        "wdro_tokens_per_second": round(wdro, 1),
        "wdro_to_dpo": round(wdro / dpo, 3),
        "dro_call_seconds_per_step": float(f"{dro_call:.4g}"),
        "dro_call_pct_of_step": round(100 * dro_call / wdro_step, 3),
        "dpo_seconds_per_step": round(dpo_step, 4),
        "logits_span": span,
        "trl": trl_result,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
