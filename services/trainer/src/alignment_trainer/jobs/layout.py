"""The files a job run by the CLI (cli.py ``run``) writes into its work dir for whoever launched it: launcher.py
follows them when the service runs jobs under ``accelerate launch`` (docs/architecture.md).
"""

PROGRESS_FILE = "progress.json"
"""Rewritten after every step: {"step", "total_steps", "loss", "tokens_per_second", "eta_seconds", "time"}."""
RESULT_FILE = "result.json"
"""Written at the end: {"state": "SUCCEEDED", "total_steps", "final_metrics", "outputs"} or {"state", "error"}."""

__all__ = ["PROGRESS_FILE", "RESULT_FILE"]
