"""The CLI that `accelerate launch` runs: a tiny DPO job data-parallel over two CPU processes (DDP over gloo) finishes,
writes a loadable checkpoint, and the processes trained on disjoint shards. FSDP needs GPUs: only its config is
checked here (it parses with accelerate's loader and wraps LlamaDecoderLayer)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
from google.protobuf import json_format
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from alignment_trainer.training import export
from alignment_trainer.api.contracts import common_pb2, trainer_pb2
from accelerate_launch import launch_command, launch_env
from world import build_world, read_metrics

TRAINER = Path(__file__).resolve().parents[1]
CONFIGS = TRAINER / "accelerate"


def test_fsdp_and_ddp_configs_load_with_accelerates_loader():
    from accelerate.commands.config.config_args import load_config_from_file

    fsdp = load_config_from_file(str(CONFIGS / "fsdp.yaml"))
    assert str(fsdp.distributed_type).endswith("FSDP")
    assert str(fsdp.mixed_precision) == "bf16"
    assert fsdp.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert fsdp.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    ddp = load_config_from_file(str(CONFIGS / "ddp.yaml"))
    assert str(ddp.distributed_type).endswith("MULTI_GPU")


def test_accelerate_launch_runs_a_dpo_job_on_two_cpu_processes(tmp_path):
    world = build_world(tmp_path / "world", n_pairs=16)
    pref = trainer_pb2.PreferenceJob(init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
                                     pairs=common_pb2.ArtifactRef(uri=world.pairs.as_uri()),
                                     loss=common_pb2.PREFERENCE_LOSS_DPO, beta=0.5)
    spec = trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
        learning_rate=2e-3, batch_size=4, gradient_accumulation_steps=2, epochs=1, max_length=64, seed=3))
    spec_path = tmp_path / "job.json"
    spec_path.write_text(json_format.MessageToJson(spec))
    out = tmp_path / "out"
    proc = subprocess.run(launch_command(spec_path, out), cwd=tmp_path, env=launch_env(), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    result = json.loads((tmp_path / "out.work" / "result.json").read_text())
    assert result["state"] == "SUCCEEDED" and result["total_steps"] == 4

    # The checkpoint is a normal Hugging Face one whose weights load, and it moved away from the initial weights.
    assert export.verify_manifest(out) == []
    model = LlamaForCausalLM.from_pretrained(out / "checkpoint")
    trained = load_file(out / "checkpoint" / "model.safetensors")
    initial = load_file(world.checkpoint / "model.safetensors")
    assert set(trained) == set(initial)
    assert any(not torch.equal(trained[k], initial[k]) for k in initial)
    assert all(torch.isfinite(p).all() for p in model.parameters())

    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all(math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) for m in metrics)
    # Two processes, each with its own half of every step's batch: no example was seen by both, and together they
    # saw the whole epoch (16 pairs) once.
    assert all(m["dist/world_size"] == 2 and m["dist/shard_overlap"] == 0 for m in metrics)
    last = metrics[-1]
    assert last["dist/samples/rank0"] == last["dist/samples/rank1"] == 8
    assert json.loads((tmp_path / "out.work" / "progress.json").read_text())["step"] == 4


def test_the_service_can_run_a_job_as_an_accelerate_launch(tmp_path, monkeypatch):
    """TRAINER_LAUNCH=accelerate: the JobManager runs the job through `accelerate launch` (ddp.yaml, 2 processes,
    gloo on this CPU machine) and streams its steps back from metrics.jsonl."""
    from alignment_trainer.training import runner
    from alignment_trainer.jobs.manager import JobManager
    from alignment_trainer.api.servicer import parse_stored_spec
    from alignment_trainer.jobs.store import JobState

    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    world = build_world(tmp_path / "world", n_pairs=16)
    pref = trainer_pb2.PreferenceJob(init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
                                     pairs=common_pb2.ArtifactRef(uri=world.pairs.as_uri()),
                                     loss=common_pb2.PREFERENCE_LOSS_DPO, beta=0.5)
    spec = trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
        learning_rate=2e-3, batch_size=4, epochs=1, max_length=64))
    manager = JobManager(tmp_path / "data", default_dro_address="127.0.0.1:1", parse_spec=parse_stored_spec,
                         launch="accelerate", accelerate_config=str(CONFIGS / "ddp.yaml"), num_processes=2)
    try:
        config = parse_stored_spec(spec.SerializeToString(), manager.default_output_dir("j"), "127.0.0.1:1")
        manager.submit("j", spec.SerializeToString(), config)
        manager.start()
        events = list(manager.watch("j", lambda: True))
    finally:
        manager.begin_shutdown()
        manager.join(30)
        manager.close()
    steps = [e for e in events if isinstance(e, runner.StepReport)]
    record = events[-1]
    assert record.state == JobState.SUCCEEDED, record.error
    assert [s.step for s in steps] == [1, 2, 3, 4] and all(s.total_steps == 4 for s in steps)
    assert all(s.metrics["dist/world_size"] == 2 and s.metrics["dist/shard_overlap"] == 0 for s in steps)
    checkpoint = Path(record.outputs["hf_checkpoint"]["path"])
    assert LlamaForCausalLM.from_pretrained(checkpoint).config.num_hidden_layers == 2
    assert export.verify_manifest(Path(record.output_dir)) == []


def test_export_subcommand_turns_a_checkpoint_into_a_servable_onnx_dir(tmp_path):
    """Bring your own model: `cli export` writes what the generator and the judge load, and refuses bad input."""
    world = build_world(tmp_path / "world", n_sft=2, n_pairs=2)
    env = {**os.environ, "PYTHONPATH": str(TRAINER / "src"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "alignment_trainer.cli", "export"]
    out = tmp_path / "onnx"
    done = subprocess.run([*cmd, "--checkpoint", str(world.checkpoint), "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(printed["onnx"]["path"]) == out
    assert (out / "model.onnx").is_file() and (out / "tokenizer.json").is_file()
    assert export.verify_manifest(out) == []

    again = subprocess.run([*cmd, "--checkpoint", str(world.checkpoint), "--output", str(out)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "output exists" in again.stderr
    missing = subprocess.run([*cmd, "--checkpoint", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o2")],
                             env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "config.json is missing" in missing.stderr


def test_tokenizer_subcommand_trains_a_word_level_bpe_with_the_chat_template(tmp_path):
    """Base models trained from scratch (toy worlds): `cli tokenizer` learns about one token per frequent word, round
    trips any text, ends an assistant turn with EOS, is deterministic, and refuses bad input naming it."""
    from transformers import AutoTokenizer

    corpus = tmp_path / "sft.jsonl"
    rows = [{"prompt": f"what is {a} plus {b} ?", "response": f"the answer is {a + b} ."} for a in range(10) for b in range(10)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "PYTHONPATH": str(TRAINER / "src"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "alignment_trainer.cli", "tokenizer", "--corpus", str(corpus), "--vocab-size", "400"]
    done = subprocess.run([*cmd, "--output", str(tmp_path / "tok")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["vocab_size"] <= 400

    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert tok.tokenize("the answer is 12 .") == ["the", "Ġanswer", "Ġis", "Ġ12", "Ġ."]
    assert tok.decode(tok("never seen: ünïcode ✓")["input_ids"]) == "never seen: ünïcode ✓"
    ids = tok.apply_chat_template([{"role": "user", "content": "what is 1 plus 2 ?"}], add_generation_prompt=True, tokenize=False)
    assert ids == "<|user|>what is 1 plus 2 ?<|eos|><|assistant|>"
    assert tok.eos_token == "<|eos|>" and tok.pad_token == "<|pad|>"

    subprocess.run([*cmd, "--output", str(tmp_path / "tok2")], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert (tmp_path / "tok" / "tokenizer.json").read_bytes() == (tmp_path / "tok2" / "tokenizer.json").read_bytes()

    exists = subprocess.run([*cmd, "--output", str(tmp_path / "tok")], env=env, capture_output=True, text=True, timeout=120)
    assert exists.returncode == 2 and "output exists" in exists.stderr
    small = subprocess.run([*cmd[:-1], "10", "--output", str(tmp_path / "t3")], env=env, capture_output=True, text=True, timeout=120)
    assert small.returncode == 2 and "vocab_size must be at least 261" in small.stderr
    (tmp_path / "bad.jsonl").write_text("not json\n")
    bad = subprocess.run([*cmd[:4], "--corpus", str(tmp_path / "bad.jsonl"), "--output", str(tmp_path / "t4")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "bad.jsonl:1: not JSON" in bad.stderr
