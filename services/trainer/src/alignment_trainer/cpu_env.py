"""The trainer's CPU environment: the pins that make a seed mean the same model on every x86-64 machine, and the
size of its thread pool.

PyTorch picks its vectorised kernels per instruction set (AVX-512, AVX2 or none) and MKL its GEMM code path per
processor, so the same job on two CPUs sums in different orders and ends with different weights; a tiny difference
in the base model then moves every figure downstream (docs/reproducibility.md has the measurements). The pins, each
applied only where the environment does not already set the variable (so a user can override any of them):

    ATEN_CPU_CAPABILITY=avx2    PyTorch's kernels: the AVX2 ones on every machine that has AVX2 (x86-64 servers since
                                2013-2015); an AVX-512 machine steps down to them.
    MKL_CBWR=AVX2,STRICT        MKL's conditional numerical reproducibility: the AVX2 code path, and GEMM results that
                                do not depend on the number of threads.
    ONEDNN_MAX_CPU_ISA=AVX2     oneDNN's kernels (bf16 and convolution paths), for the same reason.
    CUBLAS_WORKSPACE_CONFIG     what deterministic cuBLAS needs on a GPU (configure_torch asks torch for
                                deterministic algorithms everywhere).

ALIGNMENT_CPU_PINS=off applies none of them (native kernels: faster on AVX-512, not comparable across machines).

Threads: TRAINER_THREADS, else OMP_NUM_THREADS, else the cores this process may use (its CPU affinity and cgroup v2
quota, else cgroup v1's CFS quota), less one in the server, whose gRPC threads need a core (on 2 cores, two torch
threads beside the server ran DPO 6.5x slower than one). Results do not depend on the thread count (measured for 1
and 2; MKL's STRICT mode covers GEMM).

apply_pins() must run before torch computes anything (the package's __init__ calls it); PyTorch reads the
capability at its first vectorised kernel, MKL its mode at its first call.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping

PINS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # Needed by torch.use_deterministic_algorithms on a GPU (cuBLAS); no effect on a CPU.
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}
PINS_SWITCH = "ALIGNMENT_CPU_PINS"
THREADS_VAR = "TRAINER_THREADS"


class CpuEnvError(ValueError):
    """A CPU environment variable has a value the trainer cannot use; the message names it."""


def pins_enabled(environ: MutableMapping[str, str] = os.environ) -> bool:
    switch = environ.get(PINS_SWITCH, "on").strip().lower()
    if switch not in ("on", "off"):
        raise CpuEnvError(f"{PINS_SWITCH}: expected 'on' or 'off', got {environ[PINS_SWITCH]!r}")
    return switch == "on"


def apply_pins(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Sets each pin the environment does not set yet; returns the pins now in force (name -> value). A bad
    ALIGNMENT_CPU_PINS applies none here; configure_torch() then refuses it with a message naming the variable."""
    try:
        enabled = pins_enabled(environ)
    except CpuEnvError:
        enabled = False
    if enabled:
        for name, value in PINS.items():
            environ.setdefault(name, value)
    return {name: environ[name] for name in PINS if name in environ}


def _cgroup_cpu_limit(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """Cores allowed by a cgroup v2 quota ("max 100000" = none), or None when there is no quota or no file."""
    try:
        with open(path) as fh:
            quota, period = fh.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


CGROUP_V1_DIRECTORIES = ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct")


def _cgroup_v1_cpu_limit(directories: tuple[str, ...] = CGROUP_V1_DIRECTORIES) -> float | None:
    """Cores allowed by a cgroup v1 CFS quota (cpu.cfs_quota_us / cpu.cfs_period_us; a quota of -1 = none), from the
    first directory that has both files, or None. libs/lm/src/cpu-cores.ts reads the same files for onnxruntime."""
    for directory in directories:
        try:
            with open(os.path.join(directory, "cpu.cfs_quota_us")) as fh:
                quota = int(fh.read().strip())
            with open(os.path.join(directory, "cpu.cfs_period_us")) as fh:
                period = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def available_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by a cgroup quota (v2 cpu.max, else v1's CFS quota;
    rounded up), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = _cgroup_cpu_limit()
    if limit is None:
        limit = _cgroup_v1_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


def thread_count(*, serving: bool, processes: int = 1, environ: MutableMapping[str, str] = os.environ,
                 cores: int | None = None) -> int:
    """Torch intra-op threads: TRAINER_THREADS, else OMP_NUM_THREADS, else this process's share of the available
    cores (less one beside a gRPC server; ``processes`` training processes on one machine share them)."""
    for name in (THREADS_VAR, "OMP_NUM_THREADS"):
        raw = environ.get(name, "").strip()
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise CpuEnvError(f"{name}: expected a positive integer, got {raw!r}")
            return int(raw)
    cores = (available_cores() if cores is None else cores) // max(1, processes)
    return max(1, cores - 1 if serving else cores)


def configure_torch(*, serving: bool, processes: int = 1) -> dict[str, object]:
    """Sizes torch's thread pool, asks for deterministic algorithms (warnings only where an operation has none), and
    returns what is in force, for the logs."""
    import torch

    pins_enabled()
    torch.set_num_threads(thread_count(serving=serving, processes=processes))
    torch.use_deterministic_algorithms(True, warn_only=True)
    return describe()


def describe() -> dict[str, object]:
    """The CPU settings a job ran under: torch's kernel level, its threads and the pins."""
    import torch

    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "pins": {name: os.environ[name] for name in PINS if name in os.environ},
    }
