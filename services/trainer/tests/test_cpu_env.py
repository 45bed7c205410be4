"""The trainer's CPU environment (cpu_env.py): the reproducibility pins are applied unless the user set them, the
thread pool is sized from the cores, bad values are refused naming the variable, and a job run by the CLI reports the
pinned kernel level and gives the same weights whatever its thread count."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import json_format

from alignment_trainer import cpu_env
from alignment_trainer.api.contracts import common_pb2, trainer_pb2
from world import build_world

TRAINER = Path(__file__).resolve().parents[1]


def test_pins_fill_only_what_the_environment_leaves_unset():
    env = {"MKL_CBWR": "COMPATIBLE"}
    in_force = cpu_env.apply_pins(env)
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["MKL_CBWR"] == "COMPATIBLE"  # the user's choice stands
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert in_force["ATEN_CPU_CAPABILITY"] == "avx2" and in_force["MKL_CBWR"] == "COMPATIBLE"


def test_pins_off_applies_none_and_a_bad_switch_is_refused_by_name():
    env = {"ALIGNMENT_CPU_PINS": "off"}
    assert cpu_env.apply_pins(env) == {}
    assert "ATEN_CPU_CAPABILITY" not in env
    bad = {"ALIGNMENT_CPU_PINS": "maybe"}
    assert cpu_env.apply_pins(bad) == {}
    with pytest.raises(cpu_env.CpuEnvError, match="ALIGNMENT_CPU_PINS"):
        cpu_env.pins_enabled(bad)


def test_threads_come_from_the_variable_or_the_cores():
    assert cpu_env.thread_count(serving=True, environ={"TRAINER_THREADS": "3"}, cores=2) == 3
    assert cpu_env.thread_count(serving=True, environ={"TRAINER_THREADS": "3", "OMP_NUM_THREADS": "4"}, cores=2) == 3
    assert cpu_env.thread_count(serving=True, environ={"OMP_NUM_THREADS": "4"}, cores=2) == 4
    assert cpu_env.thread_count(serving=True, environ={}, cores=2) == 1  # a core stays with the gRPC server
    assert cpu_env.thread_count(serving=True, environ={}, cores=1) == 1
    assert cpu_env.thread_count(serving=False, environ={}, cores=2) == 2
    assert cpu_env.thread_count(serving=False, processes=2, environ={}, cores=8) == 4
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(cpu_env.CpuEnvError, match="TRAINER_THREADS"):
            cpu_env.thread_count(serving=False, environ={"TRAINER_THREADS": bad}, cores=2)
        with pytest.raises(cpu_env.CpuEnvError, match="OMP_NUM_THREADS"):
            cpu_env.thread_count(serving=False, environ={"OMP_NUM_THREADS": bad}, cores=2)


def test_cgroup_quota_caps_the_cores(tmp_path):
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")
    assert cpu_env._cgroup_cpu_limit(str(limit)) == 1.5
    limit.write_text("max 100000\n")
    assert cpu_env._cgroup_cpu_limit(str(limit)) is None
    assert cpu_env._cgroup_cpu_limit(str(tmp_path / "absent")) is None


def test_cgroup_v1_cfs_quota_caps_the_cores(tmp_path):
    v1 = tmp_path / "cpu"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("250000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_env._cgroup_v1_cpu_limit((str(tmp_path / "absent"), str(v1))) == 2.5
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert cpu_env._cgroup_v1_cpu_limit((str(v1),)) is None
    (v1 / "cpu.cfs_quota_us").write_text("garbage\n")
    assert cpu_env._cgroup_v1_cpu_limit((str(v1),)) is None
    assert cpu_env._cgroup_v1_cpu_limit((str(tmp_path / "absent"),)) is None


def _run_job(tmp_path: Path, name: str, world, extra_env: dict[str, str]) -> tuple[str, dict]:
    """A short DPO job through the CLI in a fresh process; returns the checkpoint's sha256 and its cpu log line."""
    pref = trainer_pb2.PreferenceJob(init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
                                     pairs=common_pb2.ArtifactRef(uri=world.pairs.as_uri()),
                                     loss=common_pb2.PREFERENCE_LOSS_DPO, beta=0.5)
    spec = trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
        learning_rate=2e-3, batch_size=4, epochs=1, max_length=64, seed=5))
    spec_path = tmp_path / f"{name}.json"
    spec_path.write_text(json_format.MessageToJson(spec))
    out = tmp_path / name
    env = {k: v for k, v in os.environ.items() if k not in (*cpu_env.PINS, "TRAINER_THREADS", "OMP_NUM_THREADS")}
    env.update({"PYTHONPATH": str(TRAINER / "src"), "HF_HUB_OFFLINE": "1", "LOG_LEVEL": "info", **extra_env})
    proc = subprocess.run([sys.executable, "-m", "alignment_trainer.cli", "run", "--spec", str(spec_path),
                           "--output", str(out)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    cpu = next(line for line in lines if line.get("msg") == "cpu environment")
    digest = hashlib.sha256((out / "checkpoint" / "model.safetensors").read_bytes()).hexdigest()
    return digest, cpu


def test_a_pinned_job_reports_avx2_and_its_weights_do_not_depend_on_the_thread_count(tmp_path):
    world = build_world(tmp_path / "world", n_pairs=16)
    one, cpu_one = _run_job(tmp_path, "one-thread", world, {"TRAINER_THREADS": "1"})
    two, cpu_two = _run_job(tmp_path, "two-threads", world, {"TRAINER_THREADS": "2"})
    assert cpu_one["cpu_capability"] == cpu_two["cpu_capability"] == "AVX2"
    assert (cpu_one["threads"], cpu_two["threads"]) == (1, 2)
    assert cpu_one["pins"]["MKL_CBWR"] == "AVX2,STRICT"
    assert one == two
    # A level the user names is the level the job runs at (the pin never overrides the environment).
    _, cpu_default = _run_job(tmp_path, "default-level", world, {"TRAINER_THREADS": "1", "ATEN_CPU_CAPABILITY": "default"})
    assert cpu_default["cpu_capability"] == "DEFAULT"
