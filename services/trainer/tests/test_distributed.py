"""The preference objectives across processes (training/distributed_objective.py, collective.py): two CPU processes
over gloo give the single-process gradient of the union batch for every coupled loss (and SPA, and W-DRO on the
per-round adversary's weights), both get the bit-identical solutions, and a 2-process job with resumable checkpoints
survives a SIGKILL of one rank: relaunched with the same work dir it resumes from the checkpoint (accelerate's
save_state/load_state) and finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from google.protobuf import json_format

from alignment_trainer.api.contracts import common_pb2, trainer_pb2
from alignment_trainer.training.collective import REPEAT, Collective, StepLayout, shard
from accelerate_launch import launch_command, launch_env
from world import build_world, read_metrics

TRAINER = Path(__file__).resolve().parents[1]
CHECK = TRAINER / "scripts" / "distributed_check.py"
COUPLED = ("wdro", "wdro-sr", "drdpo")


@pytest.fixture(scope="module")
def check():
    """scripts/distributed_check.py's report (it launches its two worker processes itself)."""
    proc = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["check"] == "distributed"
    return {item["loss"]: item for item in report["losses"]} | {"max": report["max_abs_grad_diff"]}


@pytest.mark.parametrize("loss", [*COUPLED, "spa", "wdro-per-round"])
def test_two_processes_give_the_single_process_gradient_of_the_union_batch(check, loss):
    item = check[loss]
    # float64 model and log-probs: equal up to the order of the sums, far below the 1e-6 the check demands.
    assert item["max_abs_grad_diff"] <= 1e-9
    # Without the collective each process would solve over its own shard: a different gradient, so the figure
    # above can tell the two apart.
    assert item["ungathered_grad_diff"] > 1e-3
    assert check["max"] <= 1e-9


def test_every_process_gets_the_bit_identical_solution(check):
    for loss in COUPLED:
        # One broadcast per step (3 steps) and micro-batch split (2): the adversary is solved once per step.
        assert check[loss]["broadcasts"] == 6
        assert check[loss]["solutions_identical"] and check[loss]["rank_grads_identical"]
    assert check["spa"]["broadcasts"] == 8  # SPA's rounds are micro-batches: 3 steps of 1, then 2 + 2 + 1
    # Per-round schedule: the weights solved once by the main process and broadcast, then one broadcast per step.
    assert check["wdro-per-round"]["broadcasts"] == 8 and check["wdro-per-round"]["solutions_identical"]
    assert check["wdro"]["moved_frac_max"] > 0  # the adversary moved pairs
    assert check["wdro-sr"]["flagged_frac_max"] > 0 and check["spa"]["flagged_frac_max"] > 0  # SR flagged some


def test_shard_splits_each_micro_batch_across_the_processes():
    # 5 pairs, micro-batches of 3: [0 1 2] [3 4]; rank r takes every 2nd pair of each from r on.
    assert shard(5, 0, 2, 3) == [[0, 2], [3]]
    assert shard(5, 1, 2, 3) == [[1], [4]]
    # A micro-batch with fewer pairs than processes: the extra process repeats one (and owns nothing).
    assert shard(1, 1, 2, 6) == [[REPEAT]]
    assert shard(7, 2, 3, 7) == [[2, 5]]
    with pytest.raises(ValueError, match="rank 2 of 2"):
        shard(4, 2, 2, 2)
    with pytest.raises(ValueError, match="outside a batch of 2"):
        StepLayout(batch=[10, 11], positions=[2])


def test_local_picks_this_processs_coefficients_and_zeroes_repeats():
    g = torch.tensor([0.5, -1.0, 2.0])
    got = Collective(1, 2).local(g, [0, 1, 2], [2, REPEAT, 0])
    assert got.tolist() == [2.0, 0.0, 0.5]


def _launch(spec_path: Path, out: Path, cwd: Path, dro_address: str, log: Path) -> subprocess.Popen:
    env = launch_env(DRO_SOLVER_ADDRESS=dro_address)
    cmd = launch_command(spec_path, out)
    with open(log, "wb") as log_fh:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log_fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _worker_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker process with RANK=rank among the launcher's descendants."""
    todo, seen = [launcher], []
    while todo:
        pid = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
        seen.append(pid)
    for pid in seen[1:]:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and b"alignment_trainer.cli" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    return None


def test_a_two_process_job_resumes_after_one_rank_is_sigkilled(tmp_path, dro_solver_address):
    world = build_world(tmp_path / "world", n_pairs=16)
    pref = trainer_pb2.PreferenceJob(init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
                                     pairs=common_pb2.ArtifactRef(uri=world.pairs.as_uri()),
                                     loss=common_pb2.PREFERENCE_LOSS_WDRO_SR, beta=0.5,
                                     wdro=common_pb2.WdroBudget(rho=0.3, delta=0.01),
                                     spa=common_pb2.SpaParams(warmup_fraction=0.0, k_percentile=30.0))
    steps, every = 12, 3
    spec = trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
        learning_rate=2e-3, batch_size=4, epochs=3, max_steps=steps, max_length=64, seed=3,
        checkpoint_every_steps=every))
    spec_path = tmp_path / "job.json"
    spec_path.write_text(json_format.MessageToJson(spec))
    out, work = tmp_path / "out", tmp_path / "out.work"

    def logged() -> int:
        return len(read_metrics(out / "metrics.jsonl")) if (out / "metrics.jsonl").is_file() else 0

    first = _launch(spec_path, out, tmp_path, dro_solver_address, tmp_path / "first.log")
    try:
        # Kill when a step after a checkpoint is logged and the next checkpoint is not due: then that step's line
        # from before the kill can be compared with the resumed run's.
        deadline = time.monotonic() + 60
        while not (logged() > every and logged() % every) and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.02)
        victim = _worker_pid(first.pid, rank=1)
        assert victim is not None, (tmp_path / "first.log").read_text()[-3000:]
        os.kill(victim, signal.SIGKILL)
        before = read_metrics(out / "metrics.jsonl")
        assert first.wait(60) != 0  # the launcher stops the other rank and fails
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    checkpoint = max(int(p.name[len("step-"):]) for p in (work / "resume").glob("step-*"))
    assert 0 < checkpoint < steps and checkpoint % every == 0
    # Rank 0 saw its peer vanish mid-step (or was stopped by the launcher first): the run did not succeed.
    assert not (work / "result.json").exists() or json.loads((work / "result.json").read_text())["state"] == "FAILED"

    second = _launch(spec_path, out, tmp_path, dro_solver_address, tmp_path / "second.log")
    assert second.wait(120) == 0, (tmp_path / "second.log").read_text()[-4000:]
    result = json.loads((work / "result.json").read_text())
    assert result["state"] == "SUCCEEDED" and result["total_steps"] == steps
    log = (tmp_path / "second.log").read_text()
    resumed = [json.loads(line) for line in log.splitlines() if '"resuming from checkpoint"' in line]
    assert resumed and resumed[0]["step"] == checkpoint, log[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    # Every step once: the steps after the checkpoint were trained again and their old lines dropped.
    assert [m["step"] for m in metrics] == list(range(1, steps + 1))
    assert all(m["dist/world_size"] == 2 and m["dist/shard_overlap"] == 0 for m in metrics)
    # wdro-sr: the main process called the DroSolver over gRPC for the steps with unflagged pairs, SR flagged some.
    assert all("spa/flagged_frac" in m for m in metrics) and any(m["spa/flagged_frac"] > 0 for m in metrics)
    assert sum("dro/lambda_star" in m for m in metrics) >= steps // 2
    assert not (work / "resume").exists()  # removed once the outputs are written
    # The restored model, optimizer, scheduler, RNG and SR window give the steps after the checkpoint as before.
    again = [(m, metrics[m["step"] - 1]) for m in before if m["step"] > checkpoint]
    assert again
    for old, new in again:
        for key in ("loss", "grad_norm", "learning_rate", "spa/flagged_frac"):
            assert new[key] == pytest.approx(old[key], rel=1e-6, abs=1e-9), (old["step"], key)
