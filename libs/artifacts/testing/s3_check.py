"""The Python half of `npx nx run artifacts:s3-check` (s3-check.ts): reads the artifacts TypeScript published and
checks them against the sha256s TypeScript reported, then publishes its own model directory and pairs file and
prints, as one JSON line, their URIs, sha256s and per-file digests for TypeScript to check in turn.

    python s3_check.py BUCKET TS_MODEL_SHA TS_PAIRS_SHA TS_FILES_JSON WORK_DIR
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

from alignment_trainer import objectstore


def main() -> int:
    bucket, model_sha, pairs_sha, ts_files, work = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), Path(sys.argv[5])
    model = objectstore.fetch(f"s3://{bucket}/ts/model", "model.uri", "dir", model_sha)
    pairs = objectstore.fetch(f"s3://{bucket}/ts/pairs.jsonl", "pairs.uri", "file", pairs_sha)
    seen = {p.relative_to(model).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in model.rglob("*") if p.is_file() and p.name != objectstore.MANIFEST}
    seen["pairs.jsonl"] = hashlib.sha256(pairs.read_bytes()).hexdigest()
    if seen != ts_files:
        print(json.dumps({"error": "files TypeScript wrote differ after the round trip", "seen": seen}), file=sys.stderr)
        return 1
    rng = random.Random(7)
    out = work / "py-model"
    (out / "tokenizer").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"model_type": "llama", "writer": "python"}))
    (out / "tokenizer" / "tokenizer.json").write_text(json.dumps({"vocab": list(range(100))}))
    (out / "model.safetensors").write_bytes(rng.randbytes(11 * 1024 * 1024))
    py_pairs = work / "py-pairs.jsonl"
    py_pairs.write_text("".join(json.dumps({"prompt": f"p{i}", "chosen": "a", "rejected": "b"}) + "\n" for i in range(50)))
    m_sha, m_bytes = objectstore.publish(out, f"s3://{bucket}/py/model", "output_uri")
    p_sha, p_bytes = objectstore.publish(py_pairs, f"s3://{bucket}/py/pairs.jsonl", "output_uri")
    files = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in out.rglob("*") if p.is_file() and p.name != objectstore.MANIFEST}
    files["pairs.jsonl"] = p_sha
    print(json.dumps({"model_sha": m_sha, "pairs_sha": p_sha, "bytes": m_bytes + p_bytes, "files": files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
