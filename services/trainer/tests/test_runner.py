"""runner.py and objectives.py without gRPC: resumable checkpoints reproduce an uninterrupted run exactly, gradient
accumulation does not change the gradient of the coupled losses, cancellation, truncation counting."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from alignment_trainer.training import objectives, runner
from alignment_trainer.config import (
    Architecture,
    Artifact,
    Hyperparams,
    JobConfig,
    PreferenceTask,
    SftTask,
    SpaSettings,
    WdroSettings,
)
from alignment_trainer.api.dro_client import DroSolverClient
from alignment_trainer.training.logprobs import build_pair_batch
from tiny import tiny_llama, tiny_tokenizer
from world import build_world, read_metrics, sft_rows, write_jsonl


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"))


def _spa_config(world, out, **hp):
    task = PreferenceTask(init=Artifact(world.checkpoint), reference=Artifact(world.checkpoint),
                          pairs=Artifact(world.pairs), loss="spa",
                          spa=SpaSettings(dnd_lambda=0.5, window=6, warmup_fraction=0.25, k_percentile=50.0))
    return JobConfig(task=task, output_dir=out, hparams=Hyperparams(
        learning_rate=5e-3, batch_size=4, gradient_accumulation_steps=2, epochs=2, max_length=64, **hp))


def test_checkpointing_does_not_change_the_result(world, tmp_path):
    """The coordinator now asks every LEARN job for periodic checkpoints (issue 12); saving them must leave the
    weights and every step's metrics exactly as a job that saves none (the campaign compares cells run both ways)."""
    plain = runner.run_job(_spa_config(world, tmp_path / "a-out"), tmp_path / "a")
    saved = []
    periodic = runner.run_job(_spa_config(world, tmp_path / "b-out", checkpoint_every_steps=2), tmp_path / "b",
                              runner.RunHooks(on_checkpoint=saved.append))
    assert saved == [2, 4, 6]
    a = load_file(plain.hf_checkpoint.path / "model.safetensors")
    b = load_file(periodic.hf_checkpoint.path / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert [m["loss"] for m in read_metrics(plain.metrics.path)] == [m["loss"] for m in read_metrics(periodic.metrics.path)]


class _Crash(Exception):
    pass


def test_resumed_run_equals_an_uninterrupted_one(world, tmp_path):
    """SPA keeps state beyond the weights (the refinement window, optimizer moments, schedule): a run killed after
    its step-4 checkpoint and resumed must end with exactly the same weights and per-step metrics."""
    straight = runner.run_job(_spa_config(world, tmp_path / "a-out", checkpoint_every_steps=2), tmp_path / "a")
    assert straight.total_steps == 8

    def crash_at_step_5(report):
        if report.step == 5:
            raise _Crash()

    checkpoints = []
    with pytest.raises(_Crash):
        runner.run_job(_spa_config(world, tmp_path / "b-out", checkpoint_every_steps=2), tmp_path / "b",
                       runner.RunHooks(on_step=crash_at_step_5, on_checkpoint=checkpoints.append))
    assert checkpoints == [2, 4]
    assert runner.latest_checkpoint(tmp_path / "b")[0] == 4

    starts = []
    resumed = runner.run_job(_spa_config(world, tmp_path / "b-out", checkpoint_every_steps=2), tmp_path / "b",
                             runner.RunHooks(on_start=lambda start, total: starts.append((start, total))))
    assert starts == [(4, 8)] and resumed.resumed_from_step == 4
    a = load_file(straight.hf_checkpoint.path / "model.safetensors")
    b = load_file(resumed.hf_checkpoint.path / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)

    ma, mb = read_metrics(straight.metrics.path), read_metrics(resumed.metrics.path)
    assert [m["step"] for m in mb] == list(range(1, 9))  # every step once, none replayed twice
    for x, y in zip(ma, mb):
        assert y["loss"] == pytest.approx(x["loss"], abs=1e-5)
        assert y.get("spa/flagged_frac") == x.get("spa/flagged_frac")
    assert max(m["spa/flagged_frac"] for m in ma) > 0  # refinement engaged after warm-up
    assert all(m["spa/flagged_frac"] == 0 for m in ma[:2])  # 25% of 8 steps of warm-up
    assert not (tmp_path / "b" / runner.RESUME_DIR).exists()  # removed once the job succeeded


def test_sft_from_architecture_counts_truncation_and_dropped_prompts(world, tmp_path):
    arch = Architecture(hidden_size=32, num_layers=1, num_attention_heads=4, intermediate_size=64,
                        tokenizer=Artifact(world.tokenizer))
    # The arithmetic prompts render to 12 tokens and their responses to 9: max_length 16 truncates every
    # response; the one long prompt cannot fit at all and is dropped.
    rows = sft_rows(8) + [{"prompt": "Please answer this long question " * 4, "response": "ok"}]
    task = SftTask(dataset=Artifact(write_jsonl(tmp_path / "sft.jsonl", rows)), architecture=arch)
    out = runner.run_job(JobConfig(task=task, output_dir=tmp_path / "out", hparams=Hyperparams(
        learning_rate=1e-3, batch_size=4, epochs=1, max_length=16)), tmp_path / "w")
    assert out.total_steps == 2
    assert out.final_metrics["data/truncated"] == 8
    assert out.final_metrics["data/dropped"] == 1
    config = json.loads((out.hf_checkpoint.path / "config.json").read_text())
    assert config["hidden_size"] == 32 and config["vocab_size"] == len(tiny_tokenizer())


def test_cancellation_stops_between_steps_and_writes_no_outputs(world, tmp_path):
    seen = []
    hooks = runner.RunHooks(on_step=lambda r: seen.append(r.step), should_stop=lambda: len(seen) >= 2)
    with pytest.raises(runner.JobCancelled, match="before step 3"):
        runner.run_job(_spa_config(world, tmp_path / "out"), tmp_path / "w", hooks)
    assert seen == [1, 2]
    assert not (tmp_path / "out" / runner.CHECKPOINT_DIR).exists()


def _grads(loss, ga, solver_address):
    tok = tiny_tokenizer()
    policy, ref = tiny_llama(vocab_size=len(tok), seed=0), tiny_llama(vocab_size=len(tok), seed=1)
    task = PreferenceTask(init=Artifact("."), reference=Artifact("."), pairs=Artifact("."), loss=loss, beta=0.5,
                          wdro=WdroSettings(delta=0.01, rho=0.3), spa=SpaSettings(warmup_fraction=0.0))
    client = DroSolverClient(solver_address) if loss in ("wdro", "wdro-sr") else None
    obj = objectives.PreferenceObjective(policy, ref, task, total_steps=10, device=torch.device("cpu"), bf16=False,
                                         adversary=client)
    prompts = ["What is 2 plus 3?", "Say hi", "Colour of the sky?", "Add 1 and 1", "x", "Name a fruit"]
    chosen = ["5.", "Hi there!", "Blue.", "2", "y", "Apple"]
    rejected = ["6, I think.", "No.", "Green, surely", "11", "zz", "Rock"]
    per = len(prompts) // ga
    batches = [build_pair_batch(tok, prompts[i:i + per], chosen[i:i + per], rejected[i:i + per], max_length=64, strings="chat-template")
               for i in range(0, len(prompts), per)]
    result = obj.step(batches, step=5)
    if client:
        client.close()
    return torch.cat([p.grad.flatten() for p in policy.parameters()]), result


@pytest.mark.parametrize("loss", ["wdro", "drdpo", "dpo"])
def test_gradient_accumulation_gives_the_full_batch_gradient(loss, dro_solver_address):
    """One DroSolver call per optimizer step (docs/algorithm.md §4) over all its pairs, whatever the micro-batch split:
    the two-pass scheme must reproduce the single-batch gradient, for the coupled losses too."""
    g1, r1 = _grads(loss, 1, dro_solver_address)
    g3, r3 = _grads(loss, 3, dro_solver_address)
    assert g1.abs().max() > 0
    torch.testing.assert_close(g3, g1, rtol=1e-4, atol=1e-6 * float(g1.abs().max()))
    assert r3.loss == pytest.approx(r1.loss, rel=1e-5)
    if loss == "wdro":
        assert r1.metrics["dro/value"] == pytest.approx(r3.metrics["dro/value"], rel=1e-6)
        assert r1.metrics["dro/value"] >= r1.metrics["dro/erm_value"]  # the adversary never lowers the loss


def _sft_config(world, out, **hp):
    task = SftTask(dataset=Artifact(world.sft), checkpoint=Artifact(world.checkpoint))
    base = dict(learning_rate=1e-3, batch_size=8, gradient_accumulation_steps=2, epochs=3, max_steps=10,
                max_length=64)
    base.update(hp)
    return JobConfig(task=task, output_dir=out, hparams=Hyperparams(**base))


@pytest.mark.parametrize(("scheduler", "expected"), [
    # warm-up ceil(0.2 * 10) = 2 steps from 0, then the schedule to 0 at step 10 (learning_rate is the rate the
    # step used, as transformers' Trainer logs it).
    ("constant", [0.0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1]),
    ("linear", [0.0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]),
    ("cosine", [0.0, 0.5, 1, 0.962, 0.854, 0.691, 0.5, 0.309, 0.146, 0.038]),
])
def test_learning_rate_schedules_with_warmup(world, tmp_path, scheduler, expected):
    out = runner.run_job(_sft_config(world, tmp_path / "out", lr_scheduler=scheduler, warmup_ratio=0.2),
                         tmp_path / "w")
    rates = [m["learning_rate"] / 1e-3 for m in read_metrics(out.metrics.path)]
    assert rates == pytest.approx(expected, abs=1e-3)


def test_sft_from_a_checkpoint_lowers_the_loss(world, tmp_path):
    out = runner.run_job(_sft_config(world, tmp_path / "out", learning_rate=3e-3, warmup_ratio=0.0), tmp_path / "w")
    losses = [m["loss"] for m in read_metrics(out.metrics.path)]
    assert losses[-1] < losses[0] - 0.5
    assert 0 <= out.final_metrics["mean_token_accuracy"] <= 1


def test_gradient_checkpointing_and_bf16_on_cpu_do_not_change_training(world, tmp_path):
    """Gradient checkpointing recomputes activations (same numbers); bf16 is autocast on CUDA only, so on the CPU it
    must change nothing at all (trainer.proto: "ignored on CPU")."""
    def weights(name, **hp):
        out = runner.run_job(_sft_config(world, tmp_path / name, max_steps=3, **hp), tmp_path / f"{name}-w")
        return load_file(out.hf_checkpoint.path / "model.safetensors")

    plain = weights("plain")
    for variant in (weights("gc", gradient_checkpointing=True), weights("bf16", bf16=True)):
        for name in plain:
            torch.testing.assert_close(variant[name], plain[name], rtol=0, atol=1e-6)
