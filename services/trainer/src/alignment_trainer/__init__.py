"""The trainer service: SFT and preference-optimisation jobs (DPO, SPA, W-DRO and baselines, ALGORITHM.md §1-§5)
behind the alignment.v1.Trainer gRPC contract.

Layout: config.py (job configuration) · data.py (JSONL, batching) · logprobs.py, losses.py, refinement.py (the
mathematics) · objectives.py (one optimizer step) · runner.py (the training loop, checkpoints) · export.py (HF
checkpoint, ONNX, manifests) · dro_client.py (the adversary) · store.py, jobs.py (durable job lifecycle) ·
jobspec.py, service.py, server.py (the gRPC contract and its wiring) · cpu_env.py (reproducibility pins, threads).
"""

from alignment_trainer import cpu_env

__version__ = "0.1.0"

# Before anything computes with torch: the kernel level and BLAS mode that make results the same on every x86-64
# machine (cpu_env.py).
cpu_env.apply_pins()
