"""The job CLI under ``accelerate launch`` on two CPU processes, as the tests run it: accelerate 1.15's ``launch --cpu``
starts ONE process (several need mpirun); ``--multi_gpu`` starts them with torchrun, and ACCELERATE_USE_CPU=1 makes
each a gloo (MULTI_CPU) process on a machine without GPUs."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[1]


def launch_command(spec: Path, output: Path, *cli_args: str) -> list[str]:
    """``accelerate launch`` (2 processes, one machine, a free rendezvous port) of ``alignment_trainer.cli run --spec
    SPEC --output OUTPUT`` and ``cli_args``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(port),
            "-m", "alignment_trainer.cli", "run", "--spec", str(spec), "--output", str(output), *cli_args]


def launch_env(**extra: str) -> dict[str, str]:
    """The environment of such a launch: the trainer's sources, one thread per process, no hub, gloo on CPU."""
    return {**os.environ, "PYTHONPATH": str(TRAINER / "src"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "ACCELERATE_USE_CPU": "1", **extra}
