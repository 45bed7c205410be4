"""LoRA across processes (training/job.py, distributed_setup.py): a LoRA DPO job launched as two CPU processes over gloo
(DDP through accelerate) trains the same adapter as one process on the union batch, and only the main process writes
the merged export."""

from __future__ import annotations

import json

import pytest
import torch
from google.protobuf import json_format
from safetensors.torch import load_file

from alignment_trainer.api.contracts import common_pb2, trainer_pb2
from alignment_trainer.api.jobspec import parse_job_spec
from alignment_trainer.training import runner
from test_distributed import _launch
from world import build_world, read_metrics


def test_a_two_process_lora_job_trains_the_single_process_weights(tmp_path):
    world = build_world(tmp_path / "world", n_pairs=8)
    pref = trainer_pb2.PreferenceJob(init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
                                     pairs=common_pb2.ArtifactRef(uri=world.pairs.as_uri()),
                                     loss=common_pb2.PREFERENCE_LOSS_DPO, beta=0.5)
    # 8 pairs in steps of 4: each process takes 2 of every step's pairs; a checkpoint after step 1 (save_state).
    spec = trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
        learning_rate=2e-3, batch_size=4, epochs=1, max_length=64, seed=3, checkpoint_every_steps=1,
        lora=trainer_pb2.LoraParams(rank=4, alpha=8, target_modules=["q_proj", "v_proj"])))
    spec_path = tmp_path / "job.json"
    spec_path.write_text(json_format.MessageToJson(spec))

    single = runner.run_job(parse_job_spec(spec, default_output_dir=tmp_path / "one", default_dro_address="x:1"),
                            tmp_path / "one.work")
    launched = _launch(spec_path, tmp_path / "two", tmp_path, "127.0.0.1:1", tmp_path / "two.log")
    assert launched.wait(300) == 0, (tmp_path / "two.log").read_text()[-4000:]
    result = json.loads((tmp_path / "two.work" / "result.json").read_text())
    assert result["state"] == "SUCCEEDED" and result["total_steps"] == 2

    one = load_file(single.hf_checkpoint.path / "model.safetensors")
    two = load_file(tmp_path / "two" / "checkpoint" / "model.safetensors")
    init = load_file(world.checkpoint / "model.safetensors")
    # The export is merged (no adapter tensors), by the main process alone, and the adapter did train.
    assert one.keys() == two.keys() == init.keys()
    changed = [n for n in init if not torch.equal(init[n], two[n])]
    assert changed and all(n.endswith(("q_proj.weight", "v_proj.weight")) for n in changed)
    # fp32 sums in another order (DDP averages two half-batch gradients): equal up to float32 rounding (3e-8 seen),
    # which Adam's normalisation could amplify over the two steps of lr 2e-3; 1e-6 leaves room for that and is far
    # below the update itself (~2e-3), which a wrong shard, gradient scale or adapter would change by more.
    diff = max(float((one[n] - two[n]).abs().max()) for n in one)
    update = max(float((two[n] - init[n]).abs().max()) for n in changed)
    assert diff <= 1e-6 and update > 1e-4, (diff, update)
    a, b = read_metrics(single.metrics.path), read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [m["step"] for m in b] == [1, 2] and all(m["dist/world_size"] == 2 for m in b)
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5)
