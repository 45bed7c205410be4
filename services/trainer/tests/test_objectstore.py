"""s3:// artifacts (objectstore.py) against a real S3-compatible server: moto's standalone server on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from alignment_trainer import objectstore
from alignment_trainer.objectstore import ObjectStoreError, S3PermissionDenied

MiB = 1024 * 1024
pytestmark = pytest.mark.skipif(importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None,
                                reason="moto[s3]/flask are not installed in this venv (requirements-io.txt pins them)")


@contextlib.contextmanager
def moto_server():
    """http://127.0.0.1:PORT of a moto server started for the test, stopped after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto.server did not answer within 60 s"
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(endpoint, tmp_path, monkeypatch):
    for name in ("ARTIFACT_ROOTS", "S3_ARTIFACT_ROOTS", "S3_READ_ONLY_ROOTS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("S3_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("S3_MULTIPART_PART_BYTES", str(5 * MiB))
    client = objectstore.client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket="trainer-artifacts")
    return client


def _model(root, big=0):
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "sub" / "tokenizer.json").write_text('{"v": 1}')
    if big:
        (root / "model.safetensors").write_bytes(os.urandom(big))
    return root


def test_round_trips_a_pairs_file_and_a_model_directory(s3, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    sha, size = objectstore.publish(pairs, "s3://trainer-artifacts/r/pairs.jsonl", "spec.output_uri")
    assert (sha, size) == (hashlib.sha256(pairs.read_bytes()).hexdigest(), pairs.stat().st_size)
    local = objectstore.fetch("s3://trainer-artifacts/r/pairs.jsonl", "spec.preference.pairs.uri", "file", sha)
    assert local.read_bytes() == pairs.read_bytes()

    model = _model(tmp_path / "model")
    sha, size = objectstore.publish(model, "s3://trainer-artifacts/r/model", "spec.output_uri")
    assert sha == hashlib.sha256((model / "manifest.json").read_bytes()).hexdigest()
    assert size == (model / "config.json").stat().st_size + (model / "sub" / "tokenizer.json").stat().st_size
    back = objectstore.fetch("s3://trainer-artifacts/r/model", "spec.preference.init.uri", "dir", sha)
    assert (back / "sub" / "tokenizer.json").read_text() == '{"v": 1}'
    assert back.is_relative_to(tmp_path / "cache")


def test_a_large_file_goes_up_as_a_multipart_upload(s3, tmp_path):
    model = _model(tmp_path / "model", big=11 * MiB)
    sha, _ = objectstore.publish(model, "s3://trainer-artifacts/big/model", "spec.output_uri")
    head = s3.head_object(Bucket="trainer-artifacts", Key="big/model/model.safetensors")
    assert head["ETag"].endswith('-3"')  # 11 MiB in 5 MiB parts
    back = objectstore.fetch("s3://trainer-artifacts/big/model", "spec.sft.checkpoint.uri", "dir", sha)
    assert (back / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()


def test_a_directory_without_its_manifest_is_absent(s3, tmp_path):
    s3.put_object(Bucket="trainer-artifacts", Key="half/model/config.json", Body=b"{}")
    with pytest.raises(ObjectStoreError, match="no manifest.json") as err:
        objectstore.fetch("s3://trainer-artifacts/half/model", "spec.sft.checkpoint.uri", "dir")
    assert err.value.kind == "not-found"
    assert not (tmp_path / "cache" / "trainer-artifacts" / "half").exists()


def test_content_that_does_not_match_its_sha256_is_refused(s3, tmp_path):
    sha, _ = objectstore.publish(_model(tmp_path / "model"), "s3://trainer-artifacts/t/model", "spec.output_uri")
    with pytest.raises(ObjectStoreError) as err:
        objectstore.fetch("s3://trainer-artifacts/t/model", "spec.preference.init.uri", "dir", "0" * 64)
    assert err.value.kind == "mismatch"
    s3.put_object(Bucket="trainer-artifacts", Key="t/model/config.json", Body=b'{"tampered": 1}')
    with pytest.raises(ObjectStoreError, match="config.json: content differs from the manifest"):
        objectstore.fetch("s3://trainer-artifacts/t/model", "spec.preference.init.uri", "dir", sha)
    assert not (tmp_path / "cache" / "trainer-artifacts" / "t" / "model").exists()


def test_keys_outside_the_allowed_prefixes_are_refused_naming_the_field(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("S3_ARTIFACT_ROOTS", "s3://trainer-artifacts/runs")
    monkeypatch.setenv("S3_READ_ONLY_ROOTS", "s3://trainer-artifacts/models")
    f = tmp_path / "m.jsonl"
    f.write_text("{}\n")
    assert objectstore.publish(f, "s3://trainer-artifacts/runs/m.jsonl", "spec.output_uri")[1] == 3
    for uri in ("s3://trainer-artifacts/runs-old/m.jsonl", "s3://trainer-artifacts/models/m.jsonl", "s3://other-bucket/runs/m"):
        with pytest.raises(S3PermissionDenied, match="S3_ARTIFACT_ROOTS") as err:
            objectstore.publish(f, uri, "spec.output_uri")
        assert err.value.field == "spec.output_uri"
    with pytest.raises(S3PermissionDenied) as err:
        objectstore.fetch("s3://trainer-artifacts/secret/x", "spec.sft.dataset.uri", "file")
    assert err.value.field == "spec.sft.dataset.uri"
    with pytest.raises(ObjectStoreError) as missing:
        objectstore.fetch("s3://trainer-artifacts/models/none.jsonl", "spec.sft.dataset.uri", "file")
    assert missing.value.kind == "not-found"


@pytest.mark.parametrize("uri", ["s3://b/k", "s3://trainer-artifacts", "s3://trainer-artifacts/a/../b", "file:///x"])
def test_malformed_s3_uris_are_refused(uri):
    with pytest.raises(ObjectStoreError):
        objectstore.parse_s3_uri(uri)
