"""export.py: the ONNX export matches PyTorch (with and without a KV cache) in the layout the generator reads, and
manifests describe exactly the files written."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import numpy as np
import onnxruntime as ort
import pytest
import torch

from alignment_trainer.training import export
from tiny import tiny_llama, tiny_tokenizer

TOLERANCE = 1e-4  # max |logit difference|, onnxruntime vs PyTorch, float32


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Two models of one architecture: the first export traces the graph, the second reuses it with its own
    weights (export.py's program cache). Both must match their own PyTorch model."""
    root = tmp_path_factory.mktemp("export")
    tok = tiny_tokenizer()
    export.clear_program_cache()  # "traced" must really trace, whatever ran before in this process
    out = {}
    for name, seed in (("traced", 0), ("cached", 5)):
        model = tiny_llama(vocab_size=len(tok), seed=seed).eval()
        ckpt = export.save_hf_checkpoint(model, tok, root / name / "checkpoint")
        onnx = export.export_onnx(root / name / "checkpoint", root / name / "onnx")
        session = ort.InferenceSession(str(onnx.path / export.ONNX_FILE), providers=["CPUExecutionProvider"])
        out[name] = (model, tok, ckpt, onnx, session)
    return out


@pytest.fixture(params=["traced", "cached"])
def exported(request, exports):
    return exports[request.param]


def _run(session, model, input_ids, attention_mask, position_ids, past):
    feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy(),
             "position_ids": position_ids.numpy()}
    for i in range(model.config.num_hidden_layers):
        feeds[f"past_key_values.{i}.key"] = past[2 * i].numpy()
        feeds[f"past_key_values.{i}.value"] = past[2 * i + 1].numpy()
    return session.run(None, feeds)


def test_io_names_follow_the_optimum_layout(exported):
    model, _, _, _, session = exported
    n = model.config.num_hidden_layers
    assert [i.name for i in session.get_inputs()] == (
        ["input_ids", "attention_mask", "position_ids"]
        + [f"past_key_values.{i}.{kv}" for i in range(n) for kv in ("key", "value")])
    assert [o.name for o in session.get_outputs()] == (
        ["logits"] + [f"present.{i}.{kv}" for i in range(n) for kv in ("key", "value")])


def test_logits_match_pytorch_without_and_with_past(exported):
    model, tok, _, _, session = exported
    # Two prompts of different lengths, left-padded as a batched generator feeds them.
    texts = ["What is 2 plus 2?", "Hi"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, ids))
    input_ids = torch.full((2, width), tok.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((2, width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, width - len(seq):] = torch.tensor(seq)
        attention_mask[row, width - len(seq):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    empty = [torch.zeros(export.kv_shape(model.config, 2, 0)) for _ in range(2 * model.config.num_hidden_layers)]

    prefill = _run(session, model, input_ids, attention_mask, position_ids, empty)
    with torch.no_grad():
        ref = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True)
    real = attention_mask.bool().numpy()
    assert np.abs(prefill[0] - ref.logits.numpy())[real].max() < TOLERANCE
    assert prefill[1].shape == export.kv_shape(model.config, 2, width)

    # One decode step from the cache: the new token attends to the prompt through present -> past.
    next_ids = torch.tensor([[7], [11]])
    mask2 = torch.cat([attention_mask, torch.ones((2, 1), dtype=torch.long)], dim=1)
    pos2 = position_ids[:, -1:] + 1
    past = [torch.from_numpy(t) for t in prefill[1:]]
    step = _run(session, model, next_ids, mask2, pos2, past)
    with torch.no_grad():
        ref2 = model(input_ids=next_ids, attention_mask=mask2, position_ids=pos2,
                     past_key_values=ref.past_key_values, use_cache=True)
    assert np.abs(step[0] - ref2.logits.numpy()).max() < TOLERANCE
    assert step[1].shape == export.kv_shape(model.config, 2, width + 1)
    # The cache matters: the same token without it gives different logits, so the check above is not vacuous.
    with torch.no_grad():
        no_cache = model(input_ids=next_ids, use_cache=False).logits
    assert np.abs(step[0] - no_cache.numpy()).max() > 1e-2


def test_onnx_dir_is_self_contained(exported):
    _, _, _, onnx, _ = exported
    names = {p.name for p in onnx.path.iterdir()}
    assert {"model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json", "manifest.json"} <= names
    assert "model.safetensors" not in names
    assert "<|assistant|>" in (onnx.path / "chat_template.jinja").read_text()


def test_manifests_list_every_file_with_its_sha256_and_size(exported):
    _, _, ckpt, onnx, _ = exported
    for info in (ckpt, onnx):
        manifest = json.loads((info.path / export.MANIFEST).read_text())
        on_disk = sorted(p.relative_to(info.path).as_posix() for p in info.path.rglob("*")
                         if p.is_file() and p.name != export.MANIFEST)
        assert [f["path"] for f in manifest["files"]] == on_disk
        for entry in manifest["files"]:
            path = info.path / entry["path"]
            assert entry["sha256"] == export.sha256_file(path)
            assert entry["size_bytes"] == path.stat().st_size
        assert manifest["total_size_bytes"] == info.size_bytes
        assert info.sha256 == export.sha256_file(info.path / export.MANIFEST)
        assert export.verify_manifest(info.path) == []


def test_tampering_is_detected(tmp_path):
    tok = tiny_tokenizer()
    info = export.save_hf_checkpoint(tiny_llama(vocab_size=len(tok)), tok, tmp_path / "ckpt")
    export.verify_artifact(info.path, info.sha256, "spec.preference.init")  # intact: no error
    with pytest.raises(export.ArtifactMismatch, match="spec.preference.init: sha256 of .* is not 0{64}$") as err:
        export.verify_artifact(info.path, "0" * 64, "spec.preference.init")
    assert export.sha256_file(info.path / "manifest.json") not in str(err.value)  # issue 12: no digest leaked
    with pytest.raises(export.ArtifactMismatch, match="/dev/zero is not a regular file or directory"):
        export.verify_artifact(pathlib.Path("/dev/zero"), "0" * 64, "spec.preference.init")  # used to hash forever
    with open(info.path / "config.json", "a") as fh:
        fh.write(" ")
    assert export.verify_manifest(info.path) == ["config.json: content differs from the manifest"]
    with pytest.raises(export.ArtifactMismatch, match="does not match its manifest: config.json"):
        export.verify_artifact(info.path, info.sha256, "spec.preference.init")


_NODE_SCRIPT = """
const ort = require('onnxruntime-node');
(async () => {
  const [path, layers, kvHeads, headDim] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
  const ids = JSON.parse(process.argv[6]).map(BigInt);
  const n = ids.length;
  const session = await ort.InferenceSession.create(path);
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, n]),
  };
  for (let i = 0; i < layers; i++) for (const kv of ['key', 'value'])
    feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
  const out = await session.run(feeds);
  process.stdout.write(JSON.stringify({dims: out.logits.dims, logits: Array.from(out.logits.data)}));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_onnxruntime_node_reads_the_export_like_the_generator_will(exported, tmp_path):
    """The TypeScript generator and judge run the export in onnxruntime-node: same logits as PyTorch."""
    repo = pathlib.Path(__file__).resolve().parents[3]
    if not (repo / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail(f"{repo}/node_modules/onnxruntime-node is missing: run `npm ci` at the repo root")
    model, _, _, onnx, _ = exported
    script = tmp_path / "logits.js"
    script.write_text(_NODE_SCRIPT)
    ids = [5, 6, 7, 40, 2]
    _, kv_heads, _, head_dim = export.kv_shape(model.config, 1, 0)
    proc = subprocess.run(
        ["node", str(script), str(onnx.path / export.ONNX_FILE), str(model.config.num_hidden_layers),
         str(kv_heads), str(head_dim), json.dumps(ids)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NODE_PATH": str(repo / "node_modules")})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dims"] == [1, len(ids), model.config.vocab_size]
    with torch.no_grad():
        ref = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].numpy()
    node = np.array(out["logits"], dtype=np.float32).reshape(len(ids), -1)
    assert np.abs(node - ref).max() < TOLERANCE


def test_a_manifest_leaves_out_tensorboard_events_so_a_rerun_lists_the_same_bytes(tmp_path):
    # A job's output directory holds TensorBoard's events beside its artifacts; they carry wall-clock times and the
    # host name, so listing them would make two runs of the same job differ in their manifest's digest.
    infos = []
    for run, stamp in enumerate(("1796584772.vm.1.0", "1796584783.vm.2.3")):
        root = tmp_path / f"run-{run}"
        root.mkdir()
        (root / "metrics.jsonl").write_text('{"step": 1, "train/loss": 0.5}\n')
        (root / f"events.out.tfevents.{stamp}").write_bytes(os.urandom(64))
        infos.append(export.write_manifest(root))
        listed = [f["path"] for f in json.loads((root / export.MANIFEST).read_text())["files"]]
        assert listed == ["metrics.jsonl"]
        assert export.verify_manifest(root) == []
    assert infos[0].sha256 == infos[1].sha256
