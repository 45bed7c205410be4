"""The s3:// input cache (objectstore.fetch) shared by processes: the ranks of one job fetch the same inputs into one
cache, so a copy is downloaded once and reused, and no fetch replaces a directory another process is reading (moto on
loopback)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from alignment_trainer import objectstore
from moto_server import use_moto

MiB = 1024 * 1024
BUCKET = "trainer-cache"


@pytest.fixture
def s3(moto_endpoint, tmp_path, monkeypatch):
    return use_moto(moto_endpoint, tmp_path / "cache", monkeypatch, BUCKET)


def _published_model(tmp_path):
    key = f"{tmp_path.name}/model"  # the server outlives each test: a key of its own
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "sub" / "tokenizer.json").write_text('{"v": 1}')
    (root / "model.safetensors").write_bytes(os.urandom(2 * MiB))
    sha, _ = objectstore.publish(root, f"s3://{BUCKET}/{key}", "spec.output_uri")
    return root, f"s3://{BUCKET}/{key}", sha


def _count_downloads(monkeypatch):
    calls = []
    real = objectstore.get_file
    monkeypatch.setattr(objectstore, "get_file", lambda bucket, key, *a, **k: calls.append(key) or real(bucket, key, *a, **k))
    return calls


def test_a_cached_directory_is_reused_in_place_not_downloaded_again(s3, tmp_path, monkeypatch):
    root, uri, sha = _published_model(tmp_path)
    first = objectstore.fetch(uri, "spec.preference.init.uri", "dir", sha)
    weights = first / "model.safetensors"
    inode = weights.stat().st_ino
    with open(weights, "rb") as reader:  # a process still reading the copy (another rank loading the model)
        downloads = _count_downloads(monkeypatch)
        again = objectstore.fetch(uri, "spec.preference.init.uri", "dir", sha)
        assert again == first and downloads == []
        assert weights.stat().st_ino == inode and reader.read() == (root / "model.safetensors").read_bytes()
    # Without a sha256 the remote manifest decides: the same bytes, so the copy is still reused.
    assert objectstore.fetch(uri, "spec.preference.init.uri", "dir") == first and downloads == []


def test_a_damaged_cached_copy_is_downloaded_again(s3, tmp_path, monkeypatch):
    root, uri, sha = _published_model(tmp_path)
    local = objectstore.fetch(uri, "spec.preference.init.uri", "dir", sha)
    (local / "model.safetensors").write_bytes(b"truncated")
    (local / "sub" / "tokenizer.json").unlink()
    downloads = _count_downloads(monkeypatch)
    back = objectstore.fetch(uri, "spec.preference.init.uri", "dir", sha)
    assert (back / "model.safetensors").read_bytes() == (root / "model.safetensors").read_bytes()
    assert (back / "sub" / "tokenizer.json").read_text() == '{"v": 1}'
    assert len(downloads) == 3
    assert not [p for p in back.parent.iterdir() if ".tmp-" in p.name]  # nothing left beside it


def test_a_cached_file_is_reused_when_its_sha256_matches_and_downloaded_again_otherwise(s3, tmp_path, monkeypatch):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    uri = f"s3://{BUCKET}/{tmp_path.name}/pairs.jsonl"
    sha, _ = objectstore.publish(pairs, uri, "spec.output_uri")
    local = objectstore.fetch(uri, "spec.preference.pairs.uri", "file", sha)
    downloads = _count_downloads(monkeypatch)
    assert objectstore.fetch(uri, "spec.preference.pairs.uri", "file", sha) == local and downloads == []
    local.write_text("edited locally\n")
    assert objectstore.fetch(uri, "spec.preference.pairs.uri", "file", sha).read_bytes() == pairs.read_bytes()
    assert downloads == [f"{tmp_path.name}/pairs.jsonl"]


def _fetch_in_child(uri: str, sha: str, queue) -> None:
    try:
        local = objectstore.fetch(uri, "spec.preference.init.uri", "dir", sha)
        queue.put((str(local), (local / "model.safetensors").read_bytes()))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which fails the test with it
        queue.put(("error", repr(err).encode()))


def test_processes_fetching_one_input_at_once_all_get_the_verified_copy(s3, tmp_path):
    root, uri, sha = _published_model(tmp_path)
    context = multiprocessing.get_context("spawn")  # children inherit the moto environment, as a job's ranks do
    queue = context.Queue()
    children = [context.Process(target=_fetch_in_child, args=(uri, sha, queue)) for _ in range(4)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=60)
    assert [path for path, _ in results if path == "error"] == [], results
    assert {path for path, _ in results} == {str(tmp_path / "cache" / BUCKET / tmp_path.name / "model")}
    assert all(data == (root / "model.safetensors").read_bytes() for _, data in results)
