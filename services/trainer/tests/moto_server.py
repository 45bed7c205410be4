"""A real S3-compatible server for the tests: moto's standalone server on a free loopback port (moto[s3] and flask are
pinned in requirements-io.txt), and the environment that points objectstore.py at it."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request

from alignment_trainer import objectstore

# moto[s3] and flask are pinned dependencies: without them the venv is broken, and the S3 tests fail here, not skip.
assert importlib.util.find_spec("moto") and importlib.util.find_spec("flask"), \
    "moto[s3]/flask are not installed in this venv (requirements-io.txt pins them)"


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


def use_moto(endpoint: str, cache, monkeypatch, bucket: str):
    """Points objectstore at ``endpoint`` (unconfined, 5 MiB parts, cache in ``cache``), creates ``bucket``, and
    returns a boto3 client."""
    for name in ("ARTIFACT_ROOTS", "S3_ARTIFACT_ROOTS", "S3_READ_ONLY_ROOTS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("S3_CACHE_DIR", str(cache))
    monkeypatch.setenv("S3_MULTIPART_PART_BYTES", str(5 * 1024 * 1024))
    client = objectstore.client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    return client
