"""s3:// artifacts (objectstore.py) against a real S3-compatible server: moto's standalone server on loopback."""

from __future__ import annotations

import hashlib
import os

import pytest

from alignment_trainer import objectstore
from alignment_trainer.objectstore import ObjectStoreError, S3PermissionDenied
from moto_server import use_moto

MiB = 1024 * 1024


@pytest.fixture
def s3(moto_endpoint, tmp_path, monkeypatch):
    return use_moto(moto_endpoint, tmp_path / "cache", monkeypatch, "trainer-artifacts")


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


def test_a_published_artifact_is_never_replaced_but_a_retry_succeeds(s3, tmp_path):
    model = _model(tmp_path / "model")
    sha, size = objectstore.publish(model, "s3://trainer-artifacts/once/model", "spec.output_uri")
    assert objectstore.publish(model, "s3://trainer-artifacts/once/model", "spec.output_uri") == (sha, size)
    other = _model(tmp_path / "other")
    (other / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ObjectStoreError, match=f"once/model is already published with other content \\(sha256 {sha}") as err:
        objectstore.publish(other, "s3://trainer-artifacts/once/model", "spec.output_uri")
    assert err.value.kind == "exists"
    back = objectstore.fetch("s3://trainer-artifacts/once/model", "spec.preference.init.uri", "dir", sha)
    assert (back / "config.json").read_text() == '{"model_type": "llama"}'
    f, g = tmp_path / "f.jsonl", tmp_path / "g.jsonl"
    f.write_text("{}\n")
    g.write_text('{"x": 1}\n')
    assert objectstore.publish(f, "s3://trainer-artifacts/once/f.jsonl", "spec.output_uri")[1] == 3
    assert objectstore.publish(f, "s3://trainer-artifacts/once/f.jsonl", "spec.output_uri")[1] == 3
    with pytest.raises(ObjectStoreError) as err:
        objectstore.publish(g, "s3://trainer-artifacts/once/f.jsonl", "spec.output_uri")
    assert err.value.kind == "exists"
    with pytest.raises(ObjectStoreError, match="already published"):
        objectstore.check_unpublished("s3://trainer-artifacts/once/model", "spec.output_uri")
    # A prefix without its manifest (an interrupted publication) is not published: it is written over.
    s3.put_object(Bucket="trainer-artifacts", Key="half2/model/stale.bin", Body=b"x")
    objectstore.check_unpublished("s3://trainer-artifacts/half2/model", "spec.output_uri")
    objectstore.publish(model, "s3://trainer-artifacts/half2/model", "spec.output_uri")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="trainer-artifacts", Prefix="half2/")["Contents"]}
    assert keys == {"half2/model/config.json", "half2/model/sub/tokenizer.json", "half2/model/manifest.json"}


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
