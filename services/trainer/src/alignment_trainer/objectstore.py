"""s3:// artifacts for the trainer (common.proto's ArtifactRef allows ``s3://bucket/key``), through boto3.

Training itself reads and writes local files only; s3:// is handled at the edges. An s3:// input (a model or
tokenizer directory, a dataset or pairs file) is downloaded into a cache under the data root (:func:`cache_dir`)
and checked against its sha256 before the job starts; an s3:// ``spec.output_uri`` makes the job train into its
local default output directory and :func:`publish` the outputs (checkpoint and ONNX directories, manifest,
metrics) under that URI when it succeeds.

The client: credentials and region from boto3's standard sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_PROFILE, instance roles; AWS_REGION / AWS_DEFAULT_REGION, default us-east-1).
S3_ENDPOINT_URL, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL names an S3-compatible server, addressed path-style.
Files larger than S3_MULTIPART_PART_BYTES (default 8 MiB, at least S3's 5 MiB) go up as multipart uploads.

Directories are published atomically for readers: the files go up and the manifest last; a prefix without
manifest.json is absent (:class:`ObjectStoreError` ``not-found``). Like a local output, a published artifact is never
replaced: publishing where a directory's manifest (or a file) with other content is already published is
:class:`ObjectStoreError` ``exists``; the same content there is this publication done before (a retry) and succeeds.

Confinement (the S3 counterpart of ARTIFACT_ROOTS / READ_ONLY_ROOTS): S3_ARTIFACT_ROOTS (read and write) and
S3_READ_ONLY_ROOTS (read), lists of ``s3://bucket[/prefix]`` separated by commas or white space. With ARTIFACT_ROOTS
or S3_ARTIFACT_ROOTS set, an s3:// URI under no such root is refused (:class:`S3PermissionDenied`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from alignment_trainer import formats

MANIFEST = "manifest.json"
SHA256_METADATA = "sha256"
MIN_PART_BYTES = 5 * 1024 * 1024
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ObjectStoreError(ValueError):
    """An s3:// artifact cannot be used; ``kind`` is ``not-found``, ``mismatch``, ``invalid-uri`` or ``exists`` (other
    content is already published there)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class S3PermissionDenied(ValueError):
    """An s3:// URI outside S3_ARTIFACT_ROOTS / S3_READ_ONLY_ROOTS; ``field`` names the spec field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def is_s3_uri(uri: str) -> bool:
    return uri.strip().lower().startswith("s3://")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; the key without a trailing ``/``, non-empty, and without empty, ``.``
    or ``..`` segments (it is also a path under the local cache)."""
    if not is_s3_uri(uri):
        raise ObjectStoreError("invalid-uri", f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri.strip()[len("s3://"):].partition("/")
    key = key.rstrip("/")
    if not _BUCKET.match(bucket):
        raise ObjectStoreError("invalid-uri", f"{bucket!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    if not key:
        raise ObjectStoreError("invalid-uri", f"s3://{bucket} names no key: write s3://{bucket}/path/to/artifact")
    if len(key.encode()) > 1024 or "\0" in key:
        raise ObjectStoreError("invalid-uri", "the key is longer than 1024 bytes or contains a NUL")
    if any(s in ("", ".", "..") for s in key.split("/")):
        raise ObjectStoreError("invalid-uri", f"the key {key!r} has an empty, '.' or '..' segment")
    return bucket, key


def _roots(name: str) -> list[tuple[str, str]]:
    out = []
    for raw in re.split(r"[\s,]+", os.environ.get(name, "")):
        if not raw:
            continue
        bare = re.fullmatch(r"s3://([^/]+)/?", raw, re.IGNORECASE)
        out.append((parse_s3_uri(f"s3://{bare.group(1)}/x")[0], "") if bare else parse_s3_uri(raw))
    return out


def confine(uri: str, field: str, mode: str) -> tuple[str, str]:
    """(bucket, key) of ``uri`` if this trainer may ``mode`` ("read"/"write") it; S3PermissionDenied otherwise."""
    bucket, key = parse_s3_uri(uri)
    if not os.environ.get("ARTIFACT_ROOTS", "").strip() and not os.environ.get("S3_ARTIFACT_ROOTS", "").strip():
        return bucket, key
    roots = _roots("S3_ARTIFACT_ROOTS") + (_roots("S3_READ_ONLY_ROOTS") if mode == "read" else [])
    for rb, rk in roots:
        if rb == bucket and (not rk or key == rk or key.startswith(rk + "/")):
            return bucket, key
    where = "S3_ARTIFACT_ROOTS" if mode == "write" else "S3_ARTIFACT_ROOTS or S3_READ_ONLY_ROOTS"
    raise S3PermissionDenied(field, f"the object is outside the buckets and prefixes this trainer may {mode} ({where})")


def client():
    import boto3
    from botocore.config import Config

    endpoint = next((e.strip() for e in (os.environ.get("S3_ENDPOINT_URL"), os.environ.get("AWS_ENDPOINT_URL_S3"),
                                         os.environ.get("AWS_ENDPOINT_URL")) if e and e.strip()), None)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    style = "path" if endpoint or os.environ.get("S3_FORCE_PATH_STYLE") == "1" else "auto"
    config = Config(s3={"addressing_style": style}, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def part_bytes() -> int:
    raw = os.environ.get("S3_MULTIPART_PART_BYTES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) >= MIN_PART_BYTES else 8 * 1024 * 1024


def _transfer():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=part_bytes(), multipart_chunksize=part_bytes(), max_concurrency=4)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _missing(err: Exception) -> bool:
    code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket")


def _failure(bucket: str, key: str, err: Exception) -> ObjectStoreError:
    if _missing(err):
        return ObjectStoreError("not-found", f"nothing at s3://{bucket}/{key}")
    return ObjectStoreError("invalid-uri", f"cannot use s3://{bucket}/{key}: {type(err).__name__}: {err}")


def put_file(local: Path, bucket: str, key: str, s3=None) -> str:
    """Uploads a file (multipart when larger than a part), its sha256 in the object's metadata; returns the sha256."""
    from botocore.exceptions import BotoCoreError, ClientError

    sha = _sha256(local)
    try:
        (s3 or client()).upload_file(str(local), bucket, key, ExtraArgs={"Metadata": {SHA256_METADATA: sha}},
                                     Config=_transfer())
    except (ClientError, BotoCoreError) as err:
        raise _failure(bucket, key, err) from err
    return sha


def _list(s3, bucket: str, prefix: str) -> list[dict]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        return [o for page in pages for o in page.get("Contents", [])]
    except (ClientError, BotoCoreError) as err:
        raise _failure(bucket, prefix, err) from err


def _delete(s3, bucket: str, keys: list[str]) -> None:
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})


def _manifest_of(root: Path) -> dict:
    files = [{"path": p.relative_to(root).as_posix(), "sha256": _sha256(p), "size_bytes": p.stat().st_size}
             for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).as_posix() != MANIFEST]
    return {"version": 1, "files": files, "total_size_bytes": sum(f["size_bytes"] for f in files)}


def _exists(bucket: str, key: str, there: str, mine: str) -> ObjectStoreError:
    return ObjectStoreError("exists", f"s3://{bucket}/{key} is already published with other content (sha256 {there}, "
                                      f"this write's {mine}); it is not replaced")


def published_sha(bucket: str, key: str, s3=None) -> str | None:
    """The sha256 of what is published at ``key``: a directory's manifest.json, else an object at the key itself;
    None when nothing is (a prefix without its manifest is an unfinished publication, not a published one)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or client()
    for k in (f"{key}/{MANIFEST}", key):
        try:
            body = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        except (ClientError, BotoCoreError) as err:
            if _missing(err):
                continue
            raise _failure(bucket, k, err) from err
        return hashlib.sha256(body).hexdigest()
    return None


def check_unpublished(uri: str, field: str) -> None:
    """Before a job starts: nothing is published at the s3:// output ``uri`` (ObjectStoreError ``exists`` otherwise),
    as a local output directory must be new or empty."""
    bucket, key = confine(uri, field, "write")
    there = published_sha(bucket, key)
    if there is not None:
        raise ObjectStoreError("exists", f"s3://{bucket}/{key} is already published (sha256 {there}); a job's outputs "
                                         "are never replaced: name a new output_uri")


def put_directory(local: Path, bucket: str, key: str, s3=None) -> tuple[str, int]:
    """Publishes a directory under ``key/`` with its manifest last (written if it has none; else the files it lists
    are checked against it, and only they go up); objects the manifest does not list are removed. A manifest already
    published there is never replaced: the same one is a retry (nothing goes up), another is ``exists``. Returns
    (sha256 of the manifest, total bytes)."""
    s3 = s3 or client()
    manifest_path = local / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        formats.check_record(manifest, formats.ArtifactManifest)
        for entry in manifest["files"]:
            p = local / entry["path"]
            if not p.is_file() or _sha256(p) != entry["sha256"]:
                raise ObjectStoreError("mismatch", f"{local} does not match its {MANIFEST}: {entry['path']}")
    else:
        manifest = _manifest_of(local)
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    manifest_key = f"{key}/{MANIFEST}"
    mine = _sha256(manifest_path)
    there = published_sha(bucket, key, s3)
    if there is not None:
        if there != mine:
            raise _exists(bucket, key, there, mine)
        return mine, manifest["total_size_bytes"]
    before = [o["Key"] for o in _list(s3, bucket, key)]  # an unpublished earlier attempt's objects are replaced
    for entry in manifest["files"]:
        put_file(local / entry["path"], bucket, f"{key}/{entry['path']}", s3)
    sha = put_file(manifest_path, bucket, manifest_key, s3)
    listed = {manifest_key, *(f"{key}/{e['path']}" for e in manifest["files"])}
    _delete(s3, bucket, [k for k in before if k not in listed])
    return sha, manifest["total_size_bytes"]


def get_file(bucket: str, key: str, dest: Path, sha256: str = "", size: int | None = None, s3=None) -> str:
    """Downloads an object to ``dest`` (a temp file renamed into place only when it matches ``sha256`` / ``size``);
    returns its sha256. A mismatch leaves nothing at ``dest``."""
    from botocore.exceptions import BotoCoreError, ClientError

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    os.close(fd)
    try:
        try:
            (s3 or client()).download_file(bucket, key, tmp, Config=_transfer())
        except (ClientError, BotoCoreError) as err:
            raise _failure(bucket, key, err) from err
        actual = _sha256(Path(tmp))
        if (sha256 and actual != sha256.lower()) or (size is not None and os.path.getsize(tmp) != size):
            raise ObjectStoreError("mismatch", f"s3://{bucket}/{key}: content differs from its sha256 {sha256}".strip())
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return actual


def get_directory(bucket: str, key: str, dest: Path, sha256: str = "", s3=None) -> Path:
    """Downloads a published directory to ``dest``: the manifest must exist (else ``not-found``), match ``sha256``
    when given, and every file it lists must match its entry (else ``mismatch``). A ``dest`` that already holds this
    manifest, byte for byte, and every file it lists at its size (a copy this function placed: it only ever renames a
    verified directory into place) is reused as it is; one with other content is replaced."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or client()
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{key}/{MANIFEST}")["Body"].read()
    except (ClientError, BotoCoreError) as err:
        if _missing(err):
            raise ObjectStoreError("not-found", f"no directory artifact at s3://{bucket}/{key} (no {MANIFEST}: "
                                                "absent, or not yet fully written)") from err
        raise _failure(bucket, key, err) from err
    if sha256 and hashlib.sha256(body).hexdigest() != sha256.lower():
        raise ObjectStoreError("mismatch", f"sha256 of s3://{bucket}/{key}/{MANIFEST} is not {sha256}")
    manifest = json.loads(body)
    formats.check_record(manifest, formats.ArtifactManifest)
    if _holds(dest, body, manifest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        for entry in manifest["files"]:
            target = (tmp / entry["path"]).resolve()
            if not target.is_relative_to(tmp.resolve()):
                raise ObjectStoreError("mismatch", f"s3://{bucket}/{key}/{MANIFEST}: {entry['path']!r} leaves the directory")
            try:
                get_file(bucket, f"{key}/{entry['path']}", target, entry["sha256"], entry["size_bytes"], s3)
            except ObjectStoreError as err:
                what = "missing" if err.kind == "not-found" else "content differs from the manifest"
                raise ObjectStoreError("mismatch", f"s3://{bucket}/{key} does not match its manifest: "
                                                   f"{entry['path']}: {what}") from err
        (tmp / MANIFEST).write_bytes(body)
        stale = Path(f"{tmp}.stale")
        if dest.exists():  # other content under this key (an attempt published again): moved aside in one rename
            os.rename(dest, stale)
        os.rename(tmp, dest)
        shutil.rmtree(stale, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _holds(dest: Path, body: bytes, manifest: dict) -> bool:
    """Whether ``dest`` is the directory of this manifest: its manifest.json has these bytes and every file listed is
    there at its size (the files' hashes were checked when the copy was downloaded)."""
    try:
        if (dest / MANIFEST).read_bytes() != body:
            return False
        return all((dest / e["path"]).stat().st_size == e["size_bytes"] for e in manifest["files"])
    except OSError:
        return False


@contextlib.contextmanager
def _cache_lock(bucket: str, key: str):
    """An exclusive lock on one key of the cache, held across processes on this host (flock on a file under the
    cache's ``.locks``): the ranks of a job fetch its inputs one after the other, so the first downloads and the rest
    reuse its copy, and no process replaces a directory another is reading."""
    locks = cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:32]
    with open(locks / f"{name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cache_dir() -> Path:
    """Where s3:// inputs are downloaded: S3_CACHE_DIR, else ``s3-cache`` under the first ARTIFACT_ROOTS directory,
    else under DATA_DIR (the trainer's data root), else the system's temporary directory."""
    if os.environ.get("S3_CACHE_DIR", "").strip():
        return Path(os.environ["S3_CACHE_DIR"].strip()).resolve()
    root = next((r.strip() for r in os.environ.get("ARTIFACT_ROOTS", "").split(":") if r.strip()), "")
    root = root or os.environ.get("DATA_DIR", "").strip()
    return (Path(root).resolve() if root else Path(tempfile.gettempdir()) / "alignment") / "s3-cache"


def fetch(uri: str, field: str, kind: str, sha256: str = "") -> Path:
    """The local, verified copy of an s3:// input (``kind`` "file" or "dir") in :func:`cache_dir`, downloaded once
    and reused: a directory while the remote manifest is the cached one, a file while it matches ``sha256`` (without
    one, a file is downloaded again). Processes sharing the cache (the ranks of one job) take turns per key."""
    bucket, key = confine(uri, field, "read")
    local = cache_dir() / bucket / key
    with _cache_lock(bucket, key):
        if kind == "dir":
            return get_directory(bucket, key, local, sha256)
        if not (sha256 and local.is_file() and _sha256(local) == sha256.lower()):
            get_file(bucket, key, local, sha256)
    return local


def publish(local: Path, uri: str, field: str) -> tuple[str, int]:
    """Uploads a local file or directory to an s3:// URI this trainer may write; (sha256, size in bytes). Other
    content already published there is ``exists``; the same content is left as it is."""
    bucket, key = confine(uri, field, "write")
    if local.is_dir():
        return put_directory(local, bucket, key)
    mine, there = _sha256(local), published_sha(bucket, key)
    if there is not None and there != mine:
        raise _exists(bucket, key, there, mine)
    return (mine if there == mine else put_file(local, bucket, key)), local.stat().st_size


def check_bucket(uri: str) -> None:
    """Checks, before a job starts, that the bucket of an s3:// output exists and answers (HeadBucket): a missing
    bucket or refused credentials are an ObjectStoreError now, not after the training when the upload fails."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri)
    try:
        client().head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as err:
        if _missing(err):
            raise ObjectStoreError("invalid-uri", f"no bucket {bucket!r} ({uri})") from err
        raise _failure(bucket, key, err) from err
