"""Training jobs with s3:// inputs and output over real gRPC: the inputs are downloaded into the cache and checked,
the job trains locally, and its outputs are published to the s3:// output_uri (moto on loopback)."""

from __future__ import annotations

import grpc
import pytest

from alignment_trainer import objectstore
from alignment_trainer.api import server
from alignment_trainer.api.contracts import common_pb2, trainer_pb2, trainer_pb2_grpc
from moto_server import use_moto
from world import build_world

BUCKET = "trainer-jobs"


@pytest.fixture
def stub(tmp_path, moto_endpoint, monkeypatch):
    use_moto(moto_endpoint, tmp_path / "cache", monkeypatch, BUCKET)
    srv = server.start(host="127.0.0.1", port=0, max_workers=4, data_dir=str(tmp_path / "data"),
                       dro_solver_address="127.0.0.1:1")
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        yield trainer_pb2_grpc.TrainerStub(channel)
    finally:
        channel.close()
        srv.shutdown(grace_s=1.0)


def _uploaded_world(tmp_path):
    world = build_world(tmp_path / "world", n_pairs=8)
    init_sha, _ = objectstore.publish(world.checkpoint, f"s3://{BUCKET}/models/init", "init")
    pairs_sha, _ = objectstore.publish(world.pairs, f"s3://{BUCKET}/data/pairs.jsonl", "pairs")
    init = common_pb2.ArtifactRef(uri=f"s3://{BUCKET}/models/init", sha256=init_sha)
    pairs = common_pb2.ArtifactRef(uri=f"s3://{BUCKET}/data/pairs.jsonl", sha256=pairs_sha)
    return trainer_pb2.PreferenceJob(init=init, reference=init, pairs=pairs, loss=common_pb2.PREFERENCE_LOSS_DPO,
                                     beta=0.5)


def test_a_job_reads_s3_inputs_and_publishes_its_outputs_to_s3(stub, tmp_path):
    spec = trainer_pb2.JobSpec(preference=_uploaded_world(tmp_path), output_uri=f"s3://{BUCKET}/runs/j1",
                               hparams=trainer_pb2.TrainingHyperparams(learning_rate=2e-3, batch_size=4, epochs=1,
                                                                       max_length=64))
    stub.StartJob(trainer_pb2.StartJobRequest(spec=spec, job_id="s3-job"), timeout=60)
    final = None
    for event in stub.WatchJob(trainer_pb2.WatchJobRequest(job_id="s3-job"), timeout=180):
        if event.HasField("job"):
            final = event.job
    assert final is not None and final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    checkpoint = final.outputs.model.hf_checkpoint
    assert checkpoint.uri == f"s3://{BUCKET}/runs/j1/checkpoint"
    assert final.outputs.metrics.uri == f"s3://{BUCKET}/runs/j1/metrics.jsonl"
    back = objectstore.fetch(checkpoint.uri, "hf_checkpoint", "dir", checkpoint.sha256)
    assert (back / "config.json").is_file() and any(back.glob("*.safetensors"))
    # The whole output directory is published under its manifest: fetching it checks every file.
    objectstore.fetch(f"s3://{BUCKET}/runs/j1", "output", "dir", final.outputs.manifest.sha256)
    # Published, the weights are not kept twice: the trainer's own copy of the model directories is gone, its
    # manifest and metrics stay.
    local = tmp_path / "data" / "jobs" / "s3-job" / "output"
    assert (local / "manifest.json").is_file() and (local / "metrics.jsonl").is_file()
    assert not (local / "checkpoint").exists() and not any(p.is_dir() for p in local.iterdir())
    # As a local output directory with files, a published s3:// output is never written over by a new job.
    spec.hparams.learning_rate = 1e-3
    with pytest.raises(grpc.RpcError) as err:
        stub.StartJob(trainer_pb2.StartJobRequest(spec=spec, job_id="s3-job-again"), timeout=60)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.value.details().startswith(f"spec.output_uri: s3://{BUCKET}/runs/j1 is already published (sha256 "
                                          f"{final.outputs.manifest.sha256})")


def test_s3_inputs_outside_the_allowed_prefixes_and_bad_digests_are_refused_naming_the_field(stub, tmp_path,
                                                                                              monkeypatch):
    pref = _uploaded_world(tmp_path)
    spec = trainer_pb2.JobSpec(preference=pref, output_uri=f"s3://{BUCKET}/runs/j2")
    monkeypatch.setenv("S3_ARTIFACT_ROOTS", f"s3://{BUCKET}/runs")
    monkeypatch.setenv("S3_READ_ONLY_ROOTS", f"s3://{BUCKET}/models")
    with pytest.raises(grpc.RpcError) as err:
        stub.StartJob(trainer_pb2.StartJobRequest(spec=spec, job_id="s3-denied"), timeout=60)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "spec.preference.pairs.uri" in err.value.details()
    monkeypatch.delenv("S3_ARTIFACT_ROOTS")
    spec.preference.pairs.sha256 = "0" * 64
    with pytest.raises(grpc.RpcError) as err:
        stub.StartJob(trainer_pb2.StartJobRequest(spec=spec, job_id="s3-mismatch"), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("spec.preference.pairs.sha256")


def test_an_s3_output_in_a_missing_bucket_is_refused_before_the_job_starts(stub, tmp_path):
    spec = trainer_pb2.JobSpec(preference=_uploaded_world(tmp_path), output_uri="s3://no-such-bucket/runs/j3",
                               hparams=trainer_pb2.TrainingHyperparams(learning_rate=2e-3))
    with pytest.raises(grpc.RpcError) as err:
        stub.StartJob(trainer_pb2.StartJobRequest(spec=spec, job_id="s3-no-bucket"), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("spec.output_uri: no bucket 'no-such-bucket'")


def test_a_job_whose_publishing_fails_keeps_its_local_outputs(stub, tmp_path):
    """The output bucket disappears while the job trains: the job fails naming the output, and the weights it trained
    stay in its own output directory (nothing a user produced is lost)."""
    s3 = objectstore.client()
    s3.create_bucket(Bucket="gone-mid-job")
    spec = trainer_pb2.JobSpec(preference=_uploaded_world(tmp_path), output_uri="s3://gone-mid-job/runs/j4",
                               hparams=trainer_pb2.TrainingHyperparams(learning_rate=2e-3, batch_size=2, epochs=3,
                                                                       max_length=64))
    stub.StartJob(trainer_pb2.StartJobRequest(spec=spec, job_id="s3-gone"), timeout=60)
    final, deleted = None, False
    for event in stub.WatchJob(trainer_pb2.WatchJobRequest(job_id="s3-gone"), timeout=180):
        if event.HasField("step") and not deleted:
            s3.delete_bucket(Bucket="gone-mid-job")  # the job is past its checks, at its first step of 12
            deleted = True
        if event.HasField("job"):
            final = event.job
    assert deleted and final is not None and final.state == common_pb2.JOB_STATE_FAILED
    assert "gone-mid-job" in final.error
    local = tmp_path / "data" / "jobs" / "s3-gone" / "output"
    assert (local / "checkpoint" / "config.json").is_file() and any((local / "checkpoint").glob("*.safetensors"))
    assert (local / "manifest.json").is_file()
