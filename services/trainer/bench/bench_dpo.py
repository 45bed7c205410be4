"""DPO training throughput of this trainer against TRL's DPOTrainer: same model, same data, same batch, one run.

    python services/trainer/bench/bench_dpo.py                  CPU: a ~3.4M-parameter Llama (npx nx run trainer:bench)
    python services/trainer/bench/bench_dpo.py --gpu            ~0.5B Llama config, random init, bf16 autocast,
                                                                50 measured steps; also reports MFU
    python services/trainer/bench/bench_dpo.py --gpu --tiny     the --gpu code path at toy size (runs on a CPU too)

Both trainers start from the same saved checkpoint (policy = reference), read the same pairs (TRL in its
conversational format, so both apply the same chat template and end responses with EOS), run plain DPO (β 0.1) with
AdamW, a cosine schedule, no gradient checkpointing, and log every step. Throughput is non-padding tokens (chosen and
rejected sequences, prompts included: the ``num_tokens`` both log) per second of wall time over the steps after the
first WARMUP_STEPS; on CUDA each timestamp follows a synchronize. The two alternate (ours, TRL, ours, TRL, …) for
``--rounds`` rounds in this process and each reports its best round: on a shared 2-core machine a neighbour's burst
can halve one run's speed, and alternating keeps such a burst from deciding the ratio. Tokens per process-CPU second
are reported beside (``cpu_ratio``): the figure a busy machine distorts least.

MFU = achieved FLOP/s / PEAK_FLOPS, with FLOPs per token = 8·N + 16·L·d·T: policy forward+backward 6N, reference
forward 2N (N = parameters in matmuls: everything but the input embedding table), and the attention score/value
products (PaLM's 12·L·d·T for forward+backward plus 4·L·d·T for the reference forward, T = mean sequence length).

The last line is one JSON object: {"bench", "metric", "value", "baseline", "ratio", ...details}; baseline is null if
TRL is not importable (it is pinned in requirements-train.txt).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))

from tiny import tiny_tokenizer  # noqa: E402  (the in-process tokenizer the tests use: nothing from a hub)

from alignment_trainer.training import runner  # noqa: E402
from alignment_trainer.config import Artifact, Hyperparams, JobConfig, PreferenceTask  # noqa: E402

PEAK_FLOPS = 790e12  # NVIDIA H200 dense bf16 tensor-core peak, FLOP/s (docs/benchmark.md)
WARMUP_STEPS = 3  # excluded from the measurement: allocator warm-up, lazy initialisation, first kernel launches
BETA = 0.1
LEARNING_RATE = 1e-5

# name: (hidden, layers, heads, kv_heads, intermediate, vocab, pairs per step, prompt words, response words, steps)
SIZES = {
    # ~3.4M parameters; vocab = the tiny tokenizer's (320).
    "cpu": dict(hidden=256, layers=4, heads=4, kv_heads=4, intermediate=688, vocab=320, batch=8,
                prompt_words=(8, 16), response_words=(10, 40), steps=20),
    # ~0.5B: Llama-style with a 32k vocabulary (the tokenizer uses the first 320 ids; compute does not care).
    "gpu": dict(hidden=1024, layers=28, heads=16, kv_heads=8, intermediate=4096, vocab=32000, batch=8,
                prompt_words=(20, 40), response_words=(40, 100), steps=50),
    # The gpu path at toy size, for testing it on a CPU.
    "gpu-tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128, vocab=512, batch=4,
                     prompt_words=(4, 8), response_words=(4, 12), steps=3),
}

_WORDS = ("the sky is blue and grass green two plus four seven answer question briefly politely preference pair "
          "prompt chosen rejected response model learns from labels rounds adversary weights samples ball").split()


def make_pairs(n: int, prompt_words: tuple[int, int], response_words: tuple[int, int], seed: int = 0) -> list[dict]:
    rng = random.Random(seed)

    def text(lo_hi):
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(*lo_hi)))

    return [{"prompt": text(prompt_words), "chosen": text(response_words), "rejected": text(response_words)}
            for _ in range(n)]


def build_checkpoint(size: dict, tokenizer, path: Path) -> int:
    """Saves a randomly initialised Llama (seed 0) with the tokenizer; returns its matmul parameter count N."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=max(size["vocab"], len(tokenizer)), hidden_size=size["hidden"],
                      intermediate_size=size["intermediate"], num_hidden_layers=size["layers"],
                      num_attention_heads=size["heads"], num_key_value_heads=size["kv_heads"],
                      max_position_embeddings=2048, tie_word_embeddings=False,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)


def throughput(samples: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(tokens per wall second, tokens per process-CPU second) between the first and last (wall time, CPU time,
    cumulative tokens) sample after warm-up. CPU time is what a busy shared machine cannot take away from a run."""
    (w0, c0, n0), (w1, c1, n1) = samples[WARMUP_STEPS - 1], samples[-1]
    return (n1 - n0) / (w1 - w0), (n1 - n0) / (c1 - c0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_ours(ckpt: Path, pairs_path: Path, size: dict, steps: int, max_length: int, bf16: bool,
               work: Path, device: torch.device) -> tuple[tuple[float, float], float]:
    samples: list[tuple[float, float, float]] = []

    def on_step(report: runner.StepReport) -> None:
        _sync(device)
        samples.append((time.perf_counter(), time.process_time(), report.metrics["num_tokens"]))

    task = PreferenceTask(init=Artifact(ckpt), reference=Artifact(ckpt), pairs=Artifact(pairs_path), loss="dpo",
                          beta=BETA)
    config = JobConfig(task=task, output_dir=work / "ours-out", hparams=Hyperparams(
        learning_rate=LEARNING_RATE, batch_size=size["batch"], max_steps=steps, max_length=max_length, bf16=bf16))
    runner.run_job(config, work / "ours-work", runner.RunHooks(on_step=on_step), device=device)
    tokens_per_step = samples[-1][2] / len(samples)
    return throughput(samples), tokens_per_step


def bench_trl(ckpt: Path, pairs: list[dict], size: dict, steps: int, max_length: int, bf16: bool,
              work: Path, device: torch.device) -> tuple[float, float] | None:
    try:
        import datasets
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
        from trl import DPOConfig, DPOTrainer
    except ImportError as err:
        print(f"TRL unavailable ({err}); reporting ours alone", file=sys.stderr)
        return None
    datasets.disable_progress_bars()
    samples: list[tuple[float, float, float]] = []

    class Timer(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "num_tokens" in logs:
                _sync(device)
                samples.append((time.perf_counter(), time.process_time(), float(logs["num_tokens"])))

    rows = [{"prompt": [{"role": "user", "content": p["prompt"]}],
             "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
    args = DPOConfig(
        output_dir=str(work / "trl-out"), per_device_train_batch_size=size["batch"], gradient_accumulation_steps=1,
        max_steps=steps, learning_rate=LEARNING_RATE, lr_scheduler_type="cosine", warmup_steps=0.1, beta=BETA,
        max_length=max_length, bf16=bf16, gradient_checkpointing=False, logging_steps=1, report_to="none",
        save_strategy="no", use_cpu=device.type == "cpu", dataloader_num_workers=0, seed=0, disable_tqdm=True,
        max_grad_norm=1.0)
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32),
        ref_model=AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32),
        args=args, train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(ckpt),
        callbacks=[Timer()])
    trainer.remove_callback(PrinterCallback)  # it prints every step's log dict; the Timer reads them instead
    trainer.train()
    return throughput(samples)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", action="store_true", help="the ~0.5B configuration, bf16 on CUDA, with MFU")
    ap.add_argument("--tiny", action="store_true", help="with --gpu: toy sizes, to test the path on a CPU")
    ap.add_argument("--steps", type=int, help="measured steps (after warm-up); default per size")
    ap.add_argument("--rounds", type=int, help="alternating rounds of ours and TRL (best of each); default 2 on "
                                                "the CPU size, 1 otherwise")
    ap.add_argument("--no-baseline", action="store_true", help="skip TRL")
    args = ap.parse_args(argv)
    name = ("gpu-tiny" if args.tiny else "gpu") if args.gpu else "cpu"
    size = SIZES[name]
    steps = WARMUP_STEPS + (args.steps or size["steps"])
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if args.gpu and not args.tiny and device.type != "cuda":
        raise SystemExit("--gpu needs CUDA (use --gpu --tiny to exercise the path on a CPU)")
    bf16 = args.gpu and device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    tokenizer = tiny_tokenizer()
    pairs = make_pairs(size["batch"] * steps, size["prompt_words"], size["response_words"])
    max_length = 2048
    with tempfile.TemporaryDirectory(prefix="bench-dpo-") as tmp:
        work = Path(tmp)
        ckpt = work / "init"
        n_matmul = build_checkpoint(size, tokenizer, ckpt)
        pairs_path = work / "pairs.jsonl"
        pairs_path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        rounds = args.rounds or (2 if name == "cpu" else 1)
        ours_runs, trl_runs = [], []
        for r in range(rounds):
            value, tokens_per_step = bench_ours(ckpt, pairs_path, size, steps, max_length, bf16, work / f"r{r}",
                                                device)
            ours_runs.append(value)
            print(f"round {r + 1}: ours {value[0]:,.0f} tokens/s ({value[1]:,.0f} per CPU-second)", file=sys.stderr)
            if not args.no_baseline:
                value = bench_trl(ckpt, pairs, size, steps, max_length, bf16, work / f"r{r}", device)
                if value is not None:
                    trl_runs.append(value)
                    print(f"round {r + 1}: TRL DPOTrainer {value[0]:,.0f} tokens/s ({value[1]:,.0f} per "
                          "CPU-second)", file=sys.stderr)
        ours, ours_cpu = max(v[0] for v in ours_runs), max(v[1] for v in ours_runs)
        trl = max(v[0] for v in trl_runs) if trl_runs else None
        trl_cpu = max(v[1] for v in trl_runs) if trl_runs else None

    mean_len = tokens_per_step / (2 * size["batch"])
    flops_per_token = 8 * n_matmul + 16 * size["layers"] * size["hidden"] * mean_len
    result = {
        "bench": f"trainer-dpo-{name}",
        "metric": "tokens_per_second",
        "value": round(ours, 1),
        "baseline": None if trl is None else round(trl, 1),
        "ratio": None if trl is None else round(ours / trl, 3),
        "baseline_name": "trl.DPOTrainer",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "params_matmul": n_matmul,
        "pairs_per_step": size["batch"],
        "measured_steps": steps - WARMUP_STEPS,
        "rounds": rounds,
        "mean_sequence_tokens": round(mean_len, 1),
        "bf16": bf16,
        "tokens_per_cpu_second": round(ours_cpu, 1),
        "baseline_tokens_per_cpu_second": None if trl_cpu is None else round(trl_cpu, 1),
        "cpu_ratio": None if trl_cpu is None else round(ours_cpu / trl_cpu, 3),
    }
    if args.gpu:
        result["mfu"] = float(f"{ours * flops_per_token / PEAK_FLOPS:.4g}")
        result["baseline_mfu"] = None if trl is None else float(f"{trl * flops_per_token / PEAK_FLOPS:.4g}")
        result["peak_flops"] = PEAK_FLOPS
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
