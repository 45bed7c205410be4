"""The job CLI's ``run --publish-uri s3://…`` (what a Kubernetes LEARN Job runs under MODEL_STORE_URI): the job trains
into --output, publishes it to the bucket as the trainer service publishes an s3:// output_uri (manifest last), and
result.json names the s3:// locations; a URI already published is refused before training (moto on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from google.protobuf import json_format

from alignment_trainer import objectstore
from alignment_trainer.api.contracts import common_pb2, trainer_pb2
from moto_server import use_moto
from accelerate_launch import launch_command, launch_env
from world import build_world

TRAINER = Path(__file__).resolve().parents[1]
BUCKET = "learn-jobs"


def _run(tmp_path: Path, spec: trainer_pb2.JobSpec, out: Path, *extra: str) -> subprocess.CompletedProcess:
    spec_path = tmp_path / "job.json"
    spec_path.write_text(json_format.MessageToJson(spec))
    env = {**os.environ, "PYTHONPATH": str(TRAINER / "src"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "alignment_trainer.cli", "run", "--spec", str(spec_path),
                           "--output", str(out), *extra], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)


def _spec(tmp_path: Path) -> trainer_pb2.JobSpec:
    world = build_world(tmp_path / "world", n_pairs=8)
    pref = trainer_pb2.PreferenceJob(init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
                                     pairs=common_pb2.ArtifactRef(uri=world.pairs.as_uri()),
                                     loss=common_pb2.PREFERENCE_LOSS_DPO, beta=0.5)
    return trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
        learning_rate=2e-3, batch_size=4, epochs=1, max_length=64, seed=3))


def test_run_publishes_its_outputs_to_the_s3_uri_manifest_last_and_result_json_names_them(tmp_path, moto_endpoint,
                                                                                             monkeypatch):
    use_moto(moto_endpoint, tmp_path / "cache", monkeypatch, BUCKET)
    uri = f"s3://{BUCKET}/store/run-1/round-0/learn/attempt-1"
    out = tmp_path / "attempt-1"
    proc = _run(tmp_path, _spec(tmp_path), out, "--publish-uri", uri)
    assert proc.returncode == 0, proc.stderr[-6000:]

    result = json.loads((tmp_path / "attempt-1.work" / "result.json").read_text())
    assert result["state"] == "SUCCEEDED"
    outputs = result["outputs"]
    assert outputs["hf_checkpoint"]["uri"] == f"{uri}/checkpoint"
    assert outputs["hf_checkpoint"]["path"] == str(out / "checkpoint")
    assert outputs["manifest"]["uri"] == f"{uri}/manifest.json"
    assert outputs["metrics"]["uri"] == f"{uri}/metrics.jsonl"
    # What is in the bucket is what the job wrote: the whole output under its manifest, the checkpoint under its own.
    objectstore.fetch(uri, "output", "dir", outputs["manifest"]["sha256"])
    back = objectstore.fetch(outputs["hf_checkpoint"]["uri"], "hf_checkpoint", "dir", outputs["hf_checkpoint"]["sha256"])
    assert (back / "model.safetensors").read_bytes() == (out / "checkpoint" / "model.safetensors").read_bytes()

    # A new job (no progress in its work dir) never publishes over it: refused before it trains, exit 2.
    again = _run(tmp_path, _spec(tmp_path), tmp_path / "other", "--publish-uri", uri)
    assert again.returncode == 2
    assert f"s3://{BUCKET}/store/run-1/round-0/learn/attempt-1 is already published" in again.stderr
    assert not (tmp_path / "other.work" / "result.json").exists()


def test_a_publish_uri_that_is_not_s3_or_has_no_bucket_is_a_bad_command_line(tmp_path, moto_endpoint, monkeypatch):
    use_moto(moto_endpoint, tmp_path / "cache", monkeypatch, BUCKET)
    bad = _run(tmp_path, _spec(tmp_path), tmp_path / "a", "--publish-uri", "/data/models/x")
    assert bad.returncode == 2 and "--publish-uri: must be an s3://bucket/key URI, got '/data/models/x'" in bad.stderr
    missing = _run(tmp_path, _spec(tmp_path), tmp_path / "b", "--publish-uri", "s3://no-such-bucket/x")
    assert missing.returncode == 2 and "no bucket 'no-such-bucket'" in missing.stderr


def test_a_resumed_run_publishes_over_its_own_unfinished_publication_and_a_retry_changes_nothing(tmp_path, moto_endpoint,
                                                                                                 monkeypatch):
    s3 = use_moto(moto_endpoint, tmp_path / "cache", monkeypatch, BUCKET)
    prefix = "store/run-2/round-0/learn/attempt-1"
    uri = f"s3://{BUCKET}/{prefix}"
    out = tmp_path / "attempt-1"
    work = tmp_path / "attempt-1.work"
    # A first pod started (its progress in the work dir), uploaded part of an output and died before the manifest.
    work.mkdir()
    (work / "progress.json").write_text(json.dumps({"step": 0, "total_steps": 2}))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/checkpoint/partial.bin", Body=b"half an upload")
    resumed = _run(tmp_path, _spec(tmp_path), out, "--publish-uri", uri)
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    result = json.loads((work / "result.json").read_text())
    assert result["state"] == "SUCCEEDED"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]}
    assert f"{prefix}/manifest.json" in keys and f"{prefix}/checkpoint/model.safetensors" in keys
    assert f"{prefix}/checkpoint/partial.bin" not in keys  # not in the manifest: removed
    published = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/manifest.json")["Body"].read()

    # The pod is killed after publishing, before its result.json: run again, the same content is a retry.
    (work / "result.json").unlink()
    again = _run(tmp_path, _spec(tmp_path), out, "--publish-uri", uri)
    assert again.returncode == 0, again.stderr[-6000:]
    assert json.loads((work / "result.json").read_text())["outputs"]["manifest"]["sha256"] == \
        result["outputs"]["manifest"]["sha256"]
    assert s3.get_object(Bucket=BUCKET, Key=f"{prefix}/manifest.json")["Body"].read() == published


def test_the_jobs_accelerate_command_trains_wdro_on_two_processes_from_s3_inputs_and_publishes_once(
        tmp_path, moto_endpoint, monkeypatch, dro_solver_address):
    """What a Kubernetes LEARN Job runs under MODEL_STORE_URI (job-manifest.ts launchCommand): `accelerate launch` of
    the CLI with --work-dir and --publish-uri, its init model and pairs s3:// objects of the store (an earlier round's
    publication), the coupled wdro loss across two gloo ranks."""
    s3 = use_moto(moto_endpoint, tmp_path / "cache", monkeypatch, BUCKET)
    world = build_world(tmp_path / "world", n_pairs=16)
    store = f"s3://{BUCKET}/store/run-3"
    init_sha, _ = objectstore.publish(world.checkpoint, f"{store}/round-0/learn/attempt-1/checkpoint", "init")
    pairs_sha, _ = objectstore.publish(world.pairs, f"{store}/round-1/pairs.jsonl", "pairs")
    pref = trainer_pb2.PreferenceJob(
        init=common_pb2.ArtifactRef(uri=f"{store}/round-0/learn/attempt-1/checkpoint", sha256=init_sha),
        pairs=common_pb2.ArtifactRef(uri=f"{store}/round-1/pairs.jsonl", sha256=pairs_sha),
        loss=common_pb2.PREFERENCE_LOSS_WDRO, beta=0.5, wdro=common_pb2.WdroBudget(rho=0.3, delta=0.01))
    spec = trainer_pb2.JobSpec(preference=pref, hparams=trainer_pb2.TrainingHyperparams(
        learning_rate=2e-3, batch_size=4, epochs=1, max_length=64, seed=3))
    spec_path = tmp_path / "job.json"
    spec_path.write_text(json_format.MessageToJson(spec))
    uri = f"{store}/round-1/learn/attempt-1"
    out, work = tmp_path / "attempt-1", tmp_path / "work"
    # The Job's command (one node, two processes), as the tests launch it on CPU (accelerate_launch.py).
    proc = subprocess.run(launch_command(spec_path, out, "--work-dir", str(work), "--publish-uri", uri), cwd=tmp_path,
                          env=launch_env(DRO_SOLVER_ADDRESS=dro_solver_address), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    result = json.loads((work / "result.json").read_text())
    assert result["state"] == "SUCCEEDED" and result["outputs"]["manifest"]["uri"] == f"{uri}/manifest.json"
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics and all(m["dist/world_size"] == 2 and "dro/lambda_star" in m for m in metrics)
    # The main process published once: the bucket's checkpoint is the one trained, and it moved from the init.
    back = objectstore.fetch(f"{uri}/checkpoint", "hf_checkpoint", "dir", result["outputs"]["hf_checkpoint"]["sha256"])
    trained = (back / "model.safetensors").read_bytes()
    assert trained == (out / "checkpoint" / "model.safetensors").read_bytes()
    assert trained != (world.checkpoint / "model.safetensors").read_bytes()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="store/run-3/round-1/learn/")["Contents"]]
    assert len(keys) == len(set(keys)) and "store/run-3/round-1/learn/attempt-1/manifest.json" in keys
    # Both ranks read the inputs from one cache, which holds one verified copy of each and nothing half-written.
    cached = tmp_path / "cache" / BUCKET / "store" / "run-3"
    assert (cached / "round-0" / "learn" / "attempt-1" / "checkpoint" / "model.safetensors").read_bytes() == \
        (world.checkpoint / "model.safetensors").read_bytes()
    assert not [p for p in cached.rglob("*") if ".tmp-" in p.name]
