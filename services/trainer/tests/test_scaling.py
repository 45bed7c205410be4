"""The options that let a job fit a real model (trainer.proto TrainingHyperparams: dtype, lora, full_logits,
cache_reference_logps, gradient_checkpointing, offload_activations), each at tiny size on the CPU."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from alignment_trainer.config import Artifact, Hyperparams, JobConfig, LoraSettings, PreferenceTask
from alignment_trainer.training import export, job_inputs, objectives, reference_cache, runner, scaling
from alignment_trainer.training.logprobs import collate_pairs, forward_logits, sequence_logps, token_logps, tokenize_pair
from tiny import tiny_llama, tiny_tokenizer
from world import build_world, read_metrics

CPU = torch.device("cpu")
PROMPTS = ["What is 2 plus 3? Answer in words, please.", "Say hi", "Colour of the sky?", "Add 1 and 1"]
CHOSEN = ["5.", "Hi there, nice to meet you!", "Blue.", "2"]
REJECTED = ["6, I think.", "No.", "Green, surely, as the grass is", "11"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"), n_pairs=8)


def _config(world, out, **hp):
    task = PreferenceTask(init=Artifact(world.checkpoint), reference=Artifact(world.checkpoint),
                          pairs=Artifact(world.pairs), loss="dpo")
    base = dict(learning_rate=5e-3, batch_size=4, gradient_accumulation_steps=2, epochs=2, max_length=64,
                warmup_ratio=0.0)
    base.update(hp)
    return JobConfig(task=task, output_dir=out, hparams=Hyperparams(**base))


def _batch(tok, response_logits_only: bool):
    pairs = [tokenize_pair(tok, p, c, r, strings="chat-template") for p, c, r in zip(PROMPTS, CHOSEN, REJECTED)]
    return collate_pairs(pairs, pad_token_id=tok.pad_token_id, max_length=64,
                         response_logits_only=response_logits_only)


# ------------------------------------------------------------------------------------------------------- dtype


def test_dtype_auto_is_fp32_on_the_cpu_and_bad_names_are_refused():
    assert scaling.resolve_dtype("auto", CPU) == torch.float32
    assert scaling.resolve_dtype("bf16", CPU) == torch.bfloat16
    assert scaling.resolve_dtype("fp32", torch.device("cuda")) == torch.float32
    with pytest.raises(ValueError, match="spec.hparams.dtype"):
        scaling.resolve_dtype("fp16", CPU)


def test_a_bf16_job_saves_bf16_weights_and_still_exports_onnx(world, tmp_path):
    cfg = _config(world, tmp_path / "out", dtype="bf16", max_steps=2)
    cfg = JobConfig(task=cfg.task, hparams=cfg.hparams, output_dir=cfg.output_dir, export_onnx=True)
    out = runner.run_job(cfg, tmp_path / "w")
    weights = load_file(out.hf_checkpoint.path / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    assert out.onnx is not None and (out.onnx.path / "model.onnx").is_file()
    assert all(m["loss"] == m["loss"] for m in read_metrics(out.metrics.path))  # finite, not NaN


# ------------------------------------------------------------------------------------------------------- LoRA


def test_lora_reference_is_the_base_and_the_merged_export_equals_the_adapted_model(tmp_path):
    tok = tiny_tokenizer()
    base = tiny_llama(vocab_size=len(tok))
    original = copy.deepcopy(base)
    model = scaling.apply_lora(base, LoraSettings(rank=4, alpha=8.0))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # lora_B starts at zero (the adapter is a no-op); give it a real update
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)
    model.eval()
    batch = _batch(tok, response_logits_only=False)

    def logps(m):  # per response token: sequence sums of ~100 nats would only resolve ~1e-5 in float32
        with torch.no_grad():
            return token_logps(forward_logits(m, batch), batch.input_ids)[batch.response_mask[:, 1:]]

    adapted, reference = logps(model), logps(scaling.AdapterDisabled(model))
    torch.testing.assert_close(reference, logps(original), rtol=0, atol=1e-6)
    assert (adapted - reference).abs().max() > 1e-2  # the adapter changes the model
    export.save_hf_checkpoint(scaling.merged(model), tok, tmp_path / "ckpt")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt", dtype=torch.float32).eval()
    assert not any("lora" in k for k in load_file(tmp_path / "ckpt" / "model.safetensors"))
    torch.testing.assert_close(logps(reloaded), adapted, rtol=0, atol=1e-5)


def test_a_lora_job_trains_only_the_adapter(world, tmp_path):
    out = runner.run_job(_config(world, tmp_path / "out", lora=LoraSettings(rank=2, alpha=4.0,
                                                                            target_modules=("q_proj", "v_proj"))),
                         tmp_path / "w")
    init = load_file(world.checkpoint / "model.safetensors")
    final = load_file(out.hf_checkpoint.path / "model.safetensors")
    assert init.keys() == final.keys()
    changed = {n for n in init if not torch.equal(init[n], final[n])}
    assert changed and all(n.endswith(("q_proj.weight", "v_proj.weight")) for n in changed)
    for n in changed:  # the merged update B·A has at most the adapter's rank
        assert torch.linalg.matrix_rank(final[n] - init[n], atol=1e-6) <= 2
    losses = [m["loss"] for m in read_metrics(out.metrics.path)]
    assert losses[-1] < losses[0]


class _Crash(Exception):
    pass


def test_a_resumed_lora_job_equals_an_uninterrupted_one(world, tmp_path):
    lora = LoraSettings(rank=2, alpha=4.0)
    straight = runner.run_job(_config(world, tmp_path / "a-out", lora=lora, checkpoint_every_steps=2), tmp_path / "a")

    def crash(report):
        if report.step == 3:
            raise _Crash()

    with pytest.raises(_Crash):
        runner.run_job(_config(world, tmp_path / "b-out", lora=lora, checkpoint_every_steps=2), tmp_path / "b",
                       runner.RunHooks(on_step=crash))
    resumed = runner.run_job(_config(world, tmp_path / "b-out", lora=lora, checkpoint_every_steps=2), tmp_path / "b")
    assert resumed.resumed_from_step == 2
    a = load_file(straight.hf_checkpoint.path / "model.safetensors")
    b = load_file(resumed.hf_checkpoint.path / "model.safetensors")
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)


# --------------------------------------------------------------------------------------- response-only logits


def test_logits_at_response_positions_give_the_full_logits_log_probs_and_gradients():
    tok = tiny_tokenizer()
    model = tiny_llama(vocab_size=len(tok))
    full, sliced = _batch(tok, False), _batch(tok, True)
    assert full.logits_from == 0 and sliced.logits_from >= 5  # the cut removes every all-prompt position
    grads = []
    values = []
    for batch in (full, sliced):
        model.zero_grad()
        logits = forward_logits(model, batch)
        assert logits.shape[1] == batch.input_ids.shape[1] - batch.logits_from
        lp = sequence_logps(logits, batch.input_ids, batch.response_mask)
        lp.sum().backward()
        values.append(lp.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(values[1], values[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-6)


def test_a_job_with_full_logits_gives_the_same_losses(world, tmp_path):
    sliced = runner.run_job(_config(world, tmp_path / "a-out", max_steps=3), tmp_path / "a")
    full = runner.run_job(_config(world, tmp_path / "b-out", max_steps=3, full_logits=True), tmp_path / "b")
    for x, y in zip(read_metrics(sliced.metrics.path), read_metrics(full.metrics.path), strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
        assert x["logits/chosen"] == pytest.approx(y["logits/chosen"], abs=1e-5)


# ------------------------------------------------------------------------------------ reference log-prob cache


def _count_reference_rows(monkeypatch) -> list[int]:
    rows: list[int] = []
    real = job_inputs.load_reference

    def counting(*args, **kwargs):
        ref = real(*args, **kwargs)
        ref.register_forward_hook(lambda _m, _args, kw, _out: rows.append(kw["input_ids"].shape[0]),
                                  with_kwargs=True)
        return ref

    monkeypatch.setattr(job_inputs, "load_reference", counting)
    return rows


def test_the_reference_runs_once_per_example_across_epochs_and_resumes(world, tmp_path, monkeypatch):
    rows = _count_reference_rows(monkeypatch)
    plain = runner.run_job(_config(world, tmp_path / "a-out"), tmp_path / "a")
    assert sum(rows) == 2 * 8 * 2  # chosen + rejected of 8 pairs, in each of 2 epochs
    rows.clear()

    cached = runner.run_job(_config(world, tmp_path / "b-out", cache_reference_logps=True), tmp_path / "b")
    assert sum(rows) == 2 * 8  # once per example
    for x, y in zip(read_metrics(plain.metrics.path), read_metrics(cached.metrics.path), strict=True):
        assert y["loss"] == pytest.approx(x["loss"], abs=1e-5)
        assert y["logps/chosen"] == pytest.approx(x["logps/chosen"], abs=1e-4)
    assert not (tmp_path / "b" / reference_cache.CACHE_FILE).exists()  # removed with the resume checkpoints

    # A resumed job reads the scores back: no reference pass at all in the second process.
    def crash(report):
        if report.step == 3:
            raise _Crash()

    rows.clear()
    with pytest.raises(_Crash):
        runner.run_job(_config(world, tmp_path / "c-out", cache_reference_logps=True, checkpoint_every_steps=2),
                       tmp_path / "c", runner.RunHooks(on_step=crash))
    assert sum(rows) == 2 * 8 and (tmp_path / "c" / reference_cache.CACHE_FILE).is_file()
    rows.clear()
    resumed = runner.run_job(_config(world, tmp_path / "c-out", cache_reference_logps=True,
                                     checkpoint_every_steps=2), tmp_path / "c")
    assert sum(rows) == 0 and resumed.resumed_from_step == 2
    assert [m["loss"] for m in read_metrics(resumed.metrics.path)] == pytest.approx(
        [m["loss"] for m in read_metrics(cached.metrics.path)], abs=1e-5)


# --------------------------------------------------------------------- gradient checkpointing, offloading


def _dpo_grads(model, offload: bool = False) -> torch.Tensor:
    tok = tiny_tokenizer()
    ref = tiny_llama(vocab_size=len(tok), seed=1)
    task = PreferenceTask(init=Artifact("."), reference=Artifact("."), pairs=Artifact("."), loss="dpo")
    obj = objectives.PreferenceObjective(model, ref, task, total_steps=1, device=CPU, bf16=False)
    with scaling.activation_offload(offload, CPU):
        obj.step([_batch(tok, True)], step=0)
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_gradient_checkpointing_and_activation_offloading_give_the_plain_gradients():
    tok = tiny_tokenizer()
    plain = _dpo_grads(tiny_llama(vocab_size=len(tok)).train())
    checkpointed = tiny_llama(vocab_size=len(tok)).train()
    checkpointed.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    offloaded = _dpo_grads(tiny_llama(vocab_size=len(tok)).train(), offload=True)
    assert plain.abs().max() > 0
    torch.testing.assert_close(_dpo_grads(checkpointed), plain, rtol=0, atol=1e-6)
    torch.testing.assert_close(offloaded, plain, rtol=0, atol=1e-6)
    assert isinstance(scaling.activation_offload(True, CPU), torch.autograd.graph.save_on_cpu)


def test_a_job_with_offloaded_activations_and_checkpointing_trains_the_same(world, tmp_path):
    plain = runner.run_job(_config(world, tmp_path / "a-out", max_steps=2), tmp_path / "a")
    other = runner.run_job(_config(world, tmp_path / "b-out", max_steps=2, offload_activations=True,
                                   gradient_checkpointing=True), tmp_path / "b")
    a = load_file(plain.hf_checkpoint.path / "model.safetensors")
    b = load_file(other.hf_checkpoint.path / "model.safetensors")
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)


def test_a_lora_target_that_matches_no_module_names_the_field():
    with pytest.raises(ValueError, match="spec.hparams.lora.target_modules"):
        scaling.apply_lora(tiny_llama(), LoraSettings(target_modules=("no_such_proj",)))
