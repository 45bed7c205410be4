"""The trainer service: SFT and preference-optimisation jobs (DPO, SPA, W-DRO and baselines, ALGORITHM.md §1-§5)
behind the alignment.v1.Trainer gRPC contract.

Layout: config.py (job configuration) · data.py (JSONL, batching) · logprobs.py, losses.py, refinement.py (the
mathematics) · objectives.py (one optimizer step) · runner.py (the training loop, checkpoints) · export.py (HF
checkpoint, ONNX, manifests) · dro_client.py (the adversary) · store.py, jobs.py (durable job lifecycle) ·
jobspec.py, service.py, server.py (the gRPC contract and its wiring).
"""

__version__ = "0.1.0"
