"""google.rpc.BadRequest details on the trainer's INVALID_ARGUMENT (issue 13): a real trainer on loopback, bad
StartJob requests, and the ``grpc-status-details-bin`` trailer decoded back into Status -> Any -> BadRequest."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from alignment_trainer.api import server
from alignment_trainer.api.bad_request import field_violation, status_details
from alignment_trainer.api.contracts import common_pb2, trainer_pb2, trainer_pb2_grpc

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    srv = server.start(host="127.0.0.1", port=0, max_workers=2, data_dir=str(tmp_path_factory.mktemp("data")),
                       dro_solver_address="127.0.0.1:1", dro_solver_allowlist=[])
    ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        yield ch
    finally:
        ch.close()
        srv.shutdown(grace_s=1.0)


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def bad_request_of(err: grpc.RpcError) -> tuple[status_pb2.Status, error_details_pb2.BadRequest]:
    trailers = dict(err.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert len(status.details) == 1
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad), status.details[0].type_url
    return status, bad


def test_a_nan_learning_rate_names_the_field_in_bad_request_details(channel, tmp_path):
    dataset = tmp_path / "sft.jsonl"
    dataset.write_text('{"prompt": "a", "response": "b"}\n')
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    sft = trainer_pb2.SftJob(dataset=common_pb2.ArtifactRef(uri=dataset.as_uri()),
                             checkpoint=common_pb2.ArtifactRef(uri=(tmp_path / "ckpt").as_uri()))
    spec = trainer_pb2.JobSpec(sft=sft, hparams=trainer_pb2.TrainingHyperparams(learning_rate=float("nan")))
    err = refused(lambda: trainer_pb2_grpc.TrainerStub(channel).StartJob(
        trainer_pb2.StartJobRequest(spec=spec, job_id="nan-lr"), timeout=TIMEOUT))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status, bad = bad_request_of(err)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == err.details()
    assert status.details[0].type_url == "type.googleapis.com/google.rpc.BadRequest"
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("spec.hparams.learning_rate", "must be greater than 0 and less than 1, got NaN")]


def test_a_bad_job_id_and_undecodable_bytes_carry_details_too(channel):
    stub = trainer_pb2_grpc.TrainerStub(channel)
    err = refused(lambda: stub.GetJob(trainer_pb2.GetJobRequest(job_id=""), timeout=TIMEOUT))
    assert [v.field for v in bad_request_of(err)[1].field_violations] == ["job_id"]
    raw = channel.unary_unary("/alignment.v1.Trainer/StartJob", request_serializer=None, response_deserializer=None)
    err = refused(lambda: raw(b"\xff\xff\xff", timeout=TIMEOUT))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad_request_of(err)[1].field_violations] == ["request"]


def test_statuses_that_name_no_field_carry_no_details(channel):
    err = refused(lambda: trainer_pb2_grpc.TrainerStub(channel).GetJob(
        trainer_pb2.GetJobRequest(job_id="no-such-job"), timeout=TIMEOUT))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "grpc-status-details-bin" not in dict(err.trailing_metadata() or ())


def test_field_violation_reads_the_path_at_the_start_of_a_message():
    assert field_violation("spec.preference.wdro.delta: must be in (0, 0.5), got 0") == (
        "spec.preference.wdro.delta", "must be in (0, 0.5), got 0")
    assert field_violation("spec.items[2].uri: missing") == ("spec.items[2].uri", "missing")
    assert field_violation("no field here") is None


def test_the_bytes_are_those_the_node_services_write():
    # The same layout libs/service-kit/src/bad-request.spec.ts expects of the Node encoder, byte for byte.
    violation = bytes([0x0a, 1, ord("f"), 0x12, 1, ord("d")])
    bad = bytes([0x0a, len(violation)]) + violation
    url = b"type.googleapis.com/google.rpc.BadRequest"
    any_ = bytes([0x0a, len(url)]) + url + bytes([0x12, len(bad)]) + bad
    message = b"f: d"
    expected = bytes([0x08, 3, 0x12, len(message)]) + message + bytes([0x1a, len(any_)]) + any_
    assert status_details(grpc.StatusCode.INVALID_ARGUMENT, "f: d") == expected
    assert status_details(grpc.StatusCode.NOT_FOUND, "f: d") is None
