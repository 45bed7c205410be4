"""What a finished job leaves behind, and how it is checked: Hugging Face checkpoint, ONNX export, manifests.

Output directory of a job (docs/architecture.md "Model formats"; common.proto ArtifactRef/ModelRef):

    checkpoint/      model.safetensors, config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
                     chat_template.jinja, manifest.json              (read by the trainer's next round and the judge)
    onnx/            model.onnx (+ model.onnx_data beyond 2 GiB) and the same config/tokenizer/chat-template files,
                     manifest.json        (self-contained for onnxruntime-node, and transformers.js with subfolder "")
    metrics.jsonl    one object per optimizer step (TRL's metric names)
    manifest.json    sha256 and size of every file above, sub-manifests included

A directory's ArtifactRef carries the sha256 of its own manifest.json (common.proto), so the checkpoint and onnx
directories each get one. Every directory is written to a temporary sibling and renamed into place, and manifests
are written last, so a reader never sees a half-written model under the final name.

ONNX layout (Optimum's, which transformers.js and libs/lm read): inputs ``input_ids``, ``attention_mask``
[batch, past + sequence], ``position_ids``, ``past_key_values.{i}.key`` / ``.value`` [batch, kv_heads, past, head_dim];
outputs ``logits`` and ``present.{i}.key`` / ``.value`` [batch, kv_heads, past + sequence, head_dim]. The first call
passes past tensors with past = 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from alignment_trainer import formats

MANIFEST = "manifest.json"
# Files a manifest leaves out: logs that differ on every run (TensorBoard's events carry wall-clock times and the host
# name), so that a re-run of the same job still yields a byte-identical manifest.
UNLISTED_PREFIXES = ("events.out.tfevents.",)
ONNX_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx_data"  # Optimum's / transformers.js's name for external weights
ONNX_OPSET = 18
# Protobuf cannot hold more than 2 GiB; past this (with margin for the graph) weights go to ONNX_DATA_FILE.
_ONNX_INLINE_LIMIT_BYTES = 1_800_000_000
# Files of a checkpoint directory that describe the model and its tokenizer (everything but the weights).
_SIDECAR_SUFFIXES = (".json", ".jinja", ".model", ".txt")


class ArtifactMismatch(ValueError):
    """Raised when an input file or directory does not have the sha256 its ArtifactRef promised."""


@dataclass(frozen=True)
class ArtifactInfo:
    """What an alignment.v1.ArtifactRef says about a written file or directory."""

    path: Path
    sha256: str  # of the file, or of a directory's manifest.json
    size_bytes: int  # of the file, or the sum over a directory's files (its manifest excluded)


# ------------------------------------------------------------------------------------------------ hashing/manifests


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj) -> None:
    """Writes JSON to a temp file in the same directory, fsyncs it, and renames it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_manifest(root: Path) -> ArtifactInfo:
    """Writes ``root/manifest.json`` listing every file under root (path relative to root, sha256, size_bytes),
    sorted by path, except UNLISTED_PREFIXES; returns the directory's ArtifactInfo (the manifest's own sha256, the
    files' total size)."""
    files = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.relative_to(root).as_posix() != MANIFEST and not p.name.startswith(UNLISTED_PREFIXES):
            files.append({"path": p.relative_to(root).as_posix(), "sha256": sha256_file(p),
                          "size_bytes": p.stat().st_size})
    total = sum(f["size_bytes"] for f in files)
    write_json_atomic(root / MANIFEST, {"version": 1, "files": files, "total_size_bytes": total})
    return ArtifactInfo(path=root, sha256=sha256_file(root / MANIFEST), size_bytes=total)


def file_info(path: Path) -> ArtifactInfo:
    return ArtifactInfo(path=path, sha256=sha256_file(path), size_bytes=path.stat().st_size)


def verify_manifest(root: Path) -> list[str]:
    """Problems found re-hashing the files ``root/manifest.json`` lists (empty = every file matches)."""
    manifest = json.loads((root / MANIFEST).read_text())
    try:
        formats.check_record(manifest, formats.ArtifactManifest)
    except formats.FormatError as err:
        return [f"{MANIFEST}: {err}"]
    problems = []
    for entry in manifest["files"]:
        p = root / entry["path"]
        if not p.is_file():
            problems.append(f"{entry['path']}: missing")
        elif p.stat().st_size != entry["size_bytes"] or sha256_file(p) != entry["sha256"]:
            problems.append(f"{entry['path']}: content differs from the manifest")
    return problems


def verify_artifact(path: Path, expected_sha256: str, field: str) -> None:
    """Checks an input against its ArtifactRef.sha256 (no-op when empty): a file's own digest, or for a
    directory the digest of its manifest.json plus every file that manifest lists."""
    if not expected_sha256:
        return
    if path.is_dir():
        manifest = path / MANIFEST
        if not manifest.is_file():
            raise ArtifactMismatch(f"{field}: sha256 given but {path} has no {MANIFEST} to check it against")
        actual = sha256_file(manifest)
        problems = verify_manifest(path) if actual == expected_sha256 else []
    elif path.is_file():
        actual = sha256_file(path)
        problems = []
    else:  # a device or FIFO would be hashed forever (issue 12: /dev/zero)
        raise ArtifactMismatch(f"{field}: {path} is not a regular file or directory")
    if actual != expected_sha256:
        # The actual digest is not quoted: it would tell any caller the sha256 of any file this process can read.
        raise ArtifactMismatch(f"{field}: sha256 of {path} is not {expected_sha256}")
    if problems:
        raise ArtifactMismatch(f"{field}: {path} does not match its manifest: " + "; ".join(problems))


@contextmanager
def atomic_directory(dest: Path) -> Iterator[Path]:
    """Yields a temp directory beside ``dest``; on success it replaces ``dest`` by rename (an old ``dest`` is
    removed first), on failure it is deleted and ``dest`` is untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ------------------------------------------------------------------------------------------------ HF checkpoint


def save_hf_checkpoint(model, tokenizer, dest: Path, state_dict: dict | None = None, extra=None) -> ArtifactInfo:
    """Writes a Hugging Face checkpoint (safetensors weights, config, generation config, tokenizer, chat template)
    with its manifest, atomically. The weights are saved in the model's dtype (TrainingHyperparams.dtype: bf16 or
    float32; autocast does not change it); a LoRA model is merged first (scaling.merged). ``extra(dir)`` writes more
    files into the checkpoint before its manifest (a LoRA job's unmerged adapter: engine_adapter.py)."""
    with atomic_directory(dest) as tmp:
        # state_dict: the full weights accelerate gathered (FSDP); None = the model's own.
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        info = write_manifest(tmp)
    return ArtifactInfo(path=dest, sha256=info.sha256, size_bytes=info.size_bytes)


# ------------------------------------------------------------------------------------------------ ONNX


def onnx_io_names(num_layers: int) -> tuple[list[str], list[str]]:
    """Input and output names of the export, in order (Optimum's decoder-with-past layout)."""
    inputs = ["input_ids", "attention_mask", "position_ids"]
    outputs = ["logits"]
    for i in range(num_layers):
        inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    return inputs, outputs


class _KvCacheLM(torch.nn.Module):
    """The causal LM with its KV cache as flat tensors (what ONNX needs): forward(input_ids, attention_mask,
    position_ids, k_0, v_0, k_1, v_1, …) -> (logits, present k_0, v_0, …)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.num_layers = model.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        from transformers import DynamicCache

        cache = DynamicCache(
            ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.num_layers)],
            config=self.model.config,
        )
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True)
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def kv_shape(config, batch: int, length: int) -> tuple[int, int, int, int]:
    """Shape of one past/present key or value tensor."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return (batch, config.num_key_value_heads, length, head_dim)


# The exported graph depends only on the architecture (config), not on the weights: rounds of a run export the same
# architecture again and again, and tracing it (torch.export + translation) is most of an export's time. So the
# last PROGRAM_CACHE_SIZE traced programs are kept, keyed by the config, and a later export of the same
# architecture only swaps in the new weights (ONNXProgram.apply_weights). Exported with optimize=False so that every
# weight stays a named initializer (the optimizer folds transposes into new constants, which a weight swap would
# miss); onnxruntime applies the same graph optimizations itself when it loads the model. Two entries cover a run's
# SFT base and its policy when they differ; each entry holds one model's weights.
PROGRAM_CACHE_SIZE = 2
_program_cache: OrderedDict[str, object] = OrderedDict()
_program_cache_lock = threading.Lock()


def clear_program_cache() -> None:
    """Forgets the cached traced program (the next export traces again) and the weights it holds."""
    with _program_cache_lock:
        _program_cache.clear()


def _trace(wrapper: _KvCacheLM, config):
    """The ONNXProgram of wrapper's architecture (weights as named initializers)."""
    from torch.export import Dim

    n_layers = config.num_hidden_layers
    input_names, output_names = onnx_io_names(n_layers)
    # Sample sizes >= 2 everywhere: torch.export specialises dimensions of size 0 or 1 into constants.
    batch, seq, past = 2, 3, 4
    ids = torch.full((batch, seq), 0, dtype=torch.long)
    mask = torch.ones((batch, past + seq), dtype=torch.long)
    positions = torch.arange(past, past + seq).expand(batch, seq)
    kv = [torch.zeros(kv_shape(config, batch, past)) for _ in range(2 * n_layers)]
    b, s, p = Dim("batch_size"), Dim("sequence_length"), Dim("past_sequence_length")
    dynamic_shapes = (
        {0: b, 1: s},
        # past + sequence: torch.export derives the relation itself (a named Dim here would be refused).
        {0: b, 1: Dim.AUTO},
        {0: b, 1: s},
        tuple({0: b, 2: p} for _ in range(2 * n_layers)),
    )
    # torch.export and the ONNX translator warn about their own internals (deprecated pytree helpers, axis names
    # they merge); none of it concerns this graph, and the pytest config turns warnings into errors.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.onnx.export(
            wrapper, (ids, mask, positions, *kv), None, input_names=input_names, output_names=output_names,
            dynamic_shapes=dynamic_shapes, dynamo=True, opset_version=ONNX_OPSET, optimize=False, verbose=False)


def export_onnx(checkpoint_dir: Path, dest: Path) -> ArtifactInfo:
    """Exports the checkpoint at ``checkpoint_dir`` to ``dest`` (model.onnx plus the checkpoint's config and
    tokenizer files, and a manifest), atomically.

    The model is reloaded from the written checkpoint in float32 on the CPU, so the ONNX file is exactly what the
    checkpoint holds (the judge's log-probs must agree with the trainer's, docs/architecture.md) and consumers on CPU get
    float32 weights; a bf16 checkpoint is upcast to float32 here (exactly: every bf16 value is a float32 value). Exported with torch.export (dynamo) and symbolic batch/sequence/past dimensions.
    """
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint_dir, dtype=torch.float32).eval()
    if model.config.model_type != "llama":
        raise ValueError(f"ONNX export supports llama models only, got {model.config.model_type!r}")
    model.config.use_cache = True
    wrapper = _KvCacheLM(model).eval()
    weights = wrapper.state_dict()
    # The architecture, not where it was loaded from (to_dict carries the checkpoint path as _name_or_path).
    arch = {k: v for k, v in model.config.to_dict().items() if k != "_name_or_path"}
    key = f"{torch.__version__}|{json.dumps(arch, sort_keys=True, default=str)}"
    with _program_cache_lock:
        program = _program_cache.get(key)
        if program is None:
            program = _trace(wrapper, model.config)
            _program_cache[key] = program
            while len(_program_cache) > PROGRAM_CACHE_SIZE:
                _program_cache.popitem(last=False)
        else:
            _program_cache.move_to_end(key)
            missing = set(weights) - set(program.model.graph.initializers)
            if missing:
                raise RuntimeError(f"cached ONNX program lacks initializers for {sorted(missing)[:5]}")
            program.apply_weights(weights)
        with atomic_directory(dest) as tmp:
            weight_bytes = sum(t.numel() * t.element_size() for t in weights.values())
            if weight_bytes < _ONNX_INLINE_LIMIT_BYTES:
                program.save(tmp / ONNX_FILE, external_data=False)
            else:
                import onnx_ir

                onnx_ir.save(program.model, tmp / ONNX_FILE, external_data=ONNX_DATA_FILE)
            for f in sorted(checkpoint_dir.iterdir()):
                if f.is_file() and f.name != MANIFEST and f.suffix in _SIDECAR_SUFFIXES:
                    shutil.copy2(f, tmp / f.name)
            info = write_manifest(tmp)
    return ArtifactInfo(path=dest, sha256=info.sha256, size_bytes=info.size_bytes)


__all__ = [
    "ArtifactInfo",
    "ArtifactMismatch",
    "MANIFEST",
    "ONNX_DATA_FILE",
    "ONNX_FILE",
    "atomic_directory",
    "clear_program_cache",
    "export_onnx",
    "file_info",
    "fsync_dir",
    "kv_shape",
    "onnx_io_names",
    "save_hf_checkpoint",
    "sha256_file",
    "verify_artifact",
    "verify_manifest",
    "write_json_atomic",
    "write_manifest",
]
