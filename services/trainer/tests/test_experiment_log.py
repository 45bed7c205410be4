"""Experiment logs of a training job (experiment_log.py): TensorBoard event files beside metrics.jsonl, read back
with TensorBoard's own loader; MLFLOW_TRACKING_URI without mlflow installed; SFT's held-out eval/loss."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import types

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from alignment_trainer.api.contracts import common_pb2, trainer_pb2
from alignment_trainer.api.jobspec import InvalidSpec, parse_job_spec
from alignment_trainer.config import Artifact, Hyperparams, JobConfig, PreferenceTask, SftTask
from alignment_trainer.training import runner
from world import build_world, read_metrics

DPO_TAGS = ("train/loss", "train/rewards/chosen", "train/rewards/rejected", "train/rewards/accuracies",
            "train/rewards/margins", "train/logps/chosen", "train/logps/rejected", "train/learning_rate",
            "train/grad_norm")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"), n_sft=40)


def _dpo(world, out, **hp):
    task = PreferenceTask(init=Artifact(world.checkpoint), reference=Artifact(world.checkpoint),
                          pairs=Artifact(world.pairs), loss="dpo")
    return JobConfig(task=task, output_dir=out, hparams=Hyperparams(
        learning_rate=5e-3, batch_size=4, epochs=1, max_length=64, **hp))


def _scalars(directory):
    acc = EventAccumulator(str(directory))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_dpo_job_writes_tensorboard_events_with_trl_names(world, tmp_path):
    out = runner.run_job(_dpo(world, tmp_path / "out"), tmp_path / "w")
    lines = read_metrics(out.metrics.path)
    assert len(lines) == out.total_steps == 4
    scalars = _scalars(tmp_path / "out")
    for tag in DPO_TAGS:
        assert tag in scalars, tag
    for name in ("loss", "rewards/margins", "logps/chosen", "learning_rate", "grad_norm"):
        logged = scalars[f"train/{name}"]
        assert [s for s, _ in logged] == [1, 2, 3, 4]
        assert [v for _, v in logged] == pytest.approx([m[name] for m in lines], rel=1e-6, abs=1e-12)


def test_resumed_job_logs_each_step_once(world, tmp_path, monkeypatch):
    # The writer's per-process file counter at 9: the resumed attempt's file is named "...10", which sorts before
    # the first attempt's "...9" (what a long-lived trainer process reaches); each step must still read once.
    from tensorboard.summary.writer import event_file_writer

    monkeypatch.setattr(event_file_writer, "_global_uid", event_file_writer.AtomicCounter(9))

    class Crash(Exception):
        pass

    def crash_at_3(report):
        if report.step == 3:
            raise Crash()

    with pytest.raises(Crash):
        runner.run_job(_dpo(world, tmp_path / "out", checkpoint_every_steps=2), tmp_path / "w",
                       runner.RunHooks(on_step=crash_at_3))
    out = runner.run_job(_dpo(world, tmp_path / "out", checkpoint_every_steps=2), tmp_path / "w")
    lines = read_metrics(out.metrics.path)
    assert len(list((tmp_path / "out").glob("events.out.tfevents.*"))) == 1
    logged = _scalars(tmp_path / "out")["train/loss"]
    assert [s for s, _ in logged] == [1, 2, 3, 4]
    assert [v for _, v in logged] == pytest.approx([m["loss"] for m in lines], rel=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed here")
def test_mlflow_uri_without_mlflow_fails_at_start_naming_the_setting(world, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    steps = []
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI is set .* mlflow package is not installed"):
        runner.run_job(_dpo(world, tmp_path / "out"), tmp_path / "w", runner.RunHooks(on_step=steps.append))
    assert steps == []


def test_mlflow_uri_with_mlflow_importable_logs_params_and_every_step(world, tmp_path, monkeypatch):
    """mlflow cannot be installed here (no new dependencies), so a module under its name records what the job calls:
    the calls are mlflow's public API (set_tracking_uri, start_run, log_params, log_metrics, end_run)."""
    calls = []
    recorder = types.ModuleType("mlflow")
    for name in ("set_tracking_uri", "start_run", "log_params", "log_metrics", "end_run"):
        setattr(recorder, name, lambda *a, _n=name, **k: calls.append((_n, a, k)))
    monkeypatch.setitem(sys.modules, "mlflow", recorder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///tmp/mlruns")
    out = runner.run_job(_dpo(world, tmp_path / "out"), tmp_path / "w")
    names = [c[0] for c in calls]
    assert names == ["set_tracking_uri", "start_run", "log_params"] + ["log_metrics"] * 4 + ["end_run"]
    assert calls[0][1] == ("file:///tmp/mlruns",)
    params = calls[2][1][0]
    assert params["loss"] == "dpo" and params["hparams.learning_rate"] == "0.005" and params["kind"] == "preference"
    lines = read_metrics(out.metrics.path)
    for call, line in zip(calls[3:7], lines):
        assert call[2]["step"] == line["step"]
        assert call[1][0]["rewards/margins"] == line["rewards/margins"]


def _sft(world, out, eval_fraction):
    task = SftTask(dataset=Artifact(world.sft), checkpoint=Artifact(world.checkpoint), eval_fraction=eval_fraction)
    return JobConfig(task=task, output_dir=out, hparams=Hyperparams(
        learning_rate=3e-3, batch_size=6, epochs=2, max_length=64, warmup_ratio=0.0))


def test_sft_reports_held_out_loss_every_epoch(world, tmp_path):
    # 40 examples, eval_fraction 0.1: 4 held out, 36 trained on in batches of 6 = 6 steps per epoch.
    out = runner.run_job(_sft(world, tmp_path / "out", 0.1), tmp_path / "w")
    assert out.total_steps == 12
    lines = read_metrics(out.metrics.path)
    evals = [(m["step"], m["eval/loss"]) for m in lines if "eval/loss" in m]
    assert [s for s, _ in evals] == [6, 12]
    assert all(math.isfinite(v) and v > 0 for _, v in evals)
    assert evals[1][1] < evals[0][1]  # the model learns the task, held-out loss falls
    assert out.final_metrics["eval/loss"] == evals[1][1]
    assert _scalars(tmp_path / "out")["eval/loss"] == [(s, pytest.approx(v, rel=1e-6)) for s, v in evals]


def test_sft_eval_fraction_zero_holds_nothing_out(world, tmp_path):
    out = runner.run_job(_sft(world, tmp_path / "out", 0.0), tmp_path / "w")
    assert out.total_steps == 14  # ceil(40 / 6) = 7 steps per epoch: every example is trained on
    assert not any("eval/loss" in m for m in read_metrics(out.metrics.path))


@pytest.mark.parametrize("value, expected", [(None, 0.05), (0.2, 0.2), (0.0, 0.0), (0.6, "must be greater than or equal to 0 and less than or equal to 0.5, got 0.6"),
                                             (float("nan"), "must be greater than or equal to 0 and less than or equal to 0.5, got NaN")])
def test_job_spec_eval_fraction(world, tmp_path, value, expected):
    sft = trainer_pb2.SftJob(dataset=common_pb2.ArtifactRef(uri=str(world.sft)),
                             checkpoint=common_pb2.ArtifactRef(uri=str(world.checkpoint)))
    if value is not None:
        sft.eval_fraction = value
    spec = trainer_pb2.JobSpec(sft=sft, hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-3))
    if isinstance(expected, str):
        with pytest.raises(InvalidSpec, match=re.escape(expected)) as err:
            parse_job_spec(spec, default_output_dir=tmp_path, default_dro_address="x:1")
        assert err.value.field == "spec.sft.eval_fraction"
    else:
        task = parse_job_spec(spec, default_output_dir=tmp_path, default_dro_address="x:1").task
        assert task.eval_fraction == expected
