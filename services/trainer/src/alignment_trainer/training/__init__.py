"""The mathematics and the training loop, with no gRPC: run_job and what its callers use (runner.py), one job
(job.py, job_inputs.py, checkpoints.py, lifecycle.py), one optimizer step (objectives.py, losses.py, logprobs.py,
refinement.py), the W-DRO adversary interface and an in-process exact solver (adversary.py, exact_adversary.py),
datasets (data.py), export (export.py) and the corpus tokenizer (corpus_tokenizer.py) (docs/algorithm.md)."""
