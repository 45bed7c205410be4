"""examples/base-model/README.md's commands, run exactly as documented (its sh block, from a directory that looks like
the repository root): a tokenizer from the corpus, then SFT of a Llama built from the example's ArchitectureConfig,
with its held-out eval/loss, ONNX export and TensorBoard events."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from alignment_trainer.training import export

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "base-model"


def test_documented_base_model_commands_build_and_train_a_model(tmp_path):
    commands = re.search(r"```sh\n(.*?)```", (EXAMPLE / "README.md").read_text(), re.S).group(1)
    assert "alignment_trainer.cli tokenizer" in commands and "alignment_trainer.cli run" in commands
    for name in ("examples", "services", "tools"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(["bash", "-euc", commands], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / ".data" / "base-model" / "sft"
    result = json.loads((tmp_path / ".data" / "base-model" / "sft.work" / "result.json").read_text())
    assert result["state"] == "SUCCEEDED"
    # 64 examples, evalFraction 0.125: 8 held out, 56 in batches of 8 = 7 steps per epoch, 3 epochs.
    assert result["total_steps"] == 21
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [(m["step"], m["eval/loss"]) for m in lines if "eval/loss" in m]
    assert [s for s, _ in evals] == [7, 14, 21]
    assert evals[-1][1] < evals[0][1]
    assert result["final_metrics"]["eval/loss"] == evals[-1][1]
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (64, 2, 300)
    assert (out / "onnx" / "model.onnx").is_file()
    assert export.verify_manifest(out) == []
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert [e.step for e in acc.Scalars("eval/loss")] == [7, 14, 21]
    assert len(acc.Scalars("train/loss")) == 21
