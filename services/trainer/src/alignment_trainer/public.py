"""The trainer's public Python API for code outside services/trainer (tools/testing/make_tiny_model.py,
services/judge/bench/torch_score.py): the trainer's own tokenisation, log-prob and export conventions, so that other
components are tested and measured against exactly what the trainer does (docs/architecture.md). Everything else in
the package is internal and may move; outside code runs jobs through ``python -m alignment_trainer.cli`` or the gRPC
server instead.

    build_pair_batch    prompts (raw text or chat template) + chosen/rejected responses (+ EOS) -> a right-padded PairBatch
    sequence_logps      summed response-token log-probs of each sequence, from the policy's logits
    token_logps         per-position log-prob of the next token, from logits
    save_hf_checkpoint  a Hugging Face checkpoint directory with its manifest
    export_onnx         the ONNX export (KV cache, Optimum layout) the generator and the judge load
    write_manifest      a directory's manifest.json (sha256 of every file)
"""

from alignment_trainer.training.export import export_onnx, save_hf_checkpoint, write_manifest
from alignment_trainer.training.logprobs import build_pair_batch, sequence_logps, token_logps

__all__ = [
    "build_pair_batch",
    "export_onnx",
    "save_hf_checkpoint",
    "sequence_logps",
    "token_logps",
    "write_manifest",
]
