"""A thin, typed client of the Coordinator API (proto/alignment/v1/coordinator.proto), as the TS CLI calls it.

    from alignment_client import Client
    with Client("localhost:50051") as client:          # token: $ALIGNMENT_TOKEN unless given
        run = client.run_file("examples/micro-run.yaml")
        for event in client.watch(run.run_id):        # stage, progress and round metrics; ends with the run
            ...
        print(client.get(run.run_id).rounds[-1].metrics["eval/win_rate"])

    # A coordinator on TLS (README "TLS"): its CA, and a client certificate where it asks for one (mTLS).
    Client("coordinator.example:50051", ca_file="ca.crt", cert_file="me.crt", key_file="me.key")

Every method answers the contracts' messages (coordinator_pb2.Run, ...). A call the coordinator refuses raises
ClientError with its status code and details (INVALID_ARGUMENT names the field: ``spec.loss.beta: ...``, and
ClientError.field holds it, read from the google.rpc.BadRequest details; status_details.py). `run` checks the spec's
buf.validate ranges locally first (ranges.py) and raises the same INVALID_ARGUMENT ClientError without a call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc

from alignment_client.contracts import coordinator_pb2, coordinator_pb2_grpc
from alignment_client.ranges import range_violations
from alignment_client.run_file import RunFile, load_run_file, run_from_document
from alignment_client.status_details import invalid_field

#: The coordinator's address when neither `address` nor $ALIGNMENT_COORDINATOR is given (`npm run stack`'s).
DEFAULT_ADDRESS = "localhost:50051"
#: StartRun validates the spec and hashes every input file before it answers.
START_TIMEOUT_S = 120.0
#: ListRuns pages (the coordinator allows up to 1000).
PAGE_SIZE = 500

Spec = coordinator_pb2.RunSpec | RunFile | Mapping[str, Any]


class ClientError(Exception):
    """A call the coordinator (or the channel) refused: `code` is the gRPC status, `details` its message, `field`
    the request field it names (google.rpc.BadRequest details, else the `invalid-field` trailer), or None."""

    def __init__(self, code: grpc.StatusCode, details: str, field: str | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.field = field


def _client_error(err: grpc.RpcError) -> ClientError:
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    trailers = err.trailing_metadata() if callable(getattr(err, "trailing_metadata", None)) else None
    return ClientError(code, details or "", invalid_field(trailers))


def _read(path: str | os.PathLike[str], name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"{name}: {path} cannot be read ({err.strerror})") from None


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def channel_credentials(
    ca_file: str | os.PathLike[str] | None, cert_file: str | os.PathLike[str] | None = None, key_file: str | os.PathLike[str] | None = None
) -> grpc.ChannelCredentials | None:
    """TLS credentials as the services make theirs (libs/service-kit tls-config.ts): the coordinator's certificate
    verified against `ca_file` (PEM), and `cert_file`/`key_file` (PEM, both or neither) shown when it asks for a
    client certificate (mTLS: TLS_CLIENT_AUTH, its identity mapped by TLS_PRINCIPALS). None without a CA: plaintext.
    ValueError names the argument that is missing or unreadable."""
    if (cert_file is None) != (key_file is None):
        missing = "key_file" if key_file is None else "cert_file"
        raise ValueError(f"{missing}: cert_file and key_file go together (the client certificate and its key)")
    if ca_file is None:
        if cert_file is not None:
            raise ValueError("ca_file: must be set with cert_file (the coordinator's certificate is verified against it)")
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "ca_file"),
        private_key=_read(key_file, "key_file") if key_file is not None else None,
        certificate_chain=_read(cert_file, "cert_file") if cert_file is not None else None,
    )


class Client:
    """One channel to the coordinator at `address` (default $ALIGNMENT_COORDINATOR, else localhost:50051).

    `token` (default $ALIGNMENT_TOKEN) goes with every call as ``authorization: Bearer <token>``, for a coordinator
    that authenticates (AUTH_TOKENS_FILE). `timeout` is the deadline of the unary calls but StartRun (120 s).

    Plaintext by default (the local stack on loopback). With `ca_file` (default $ALIGNMENT_TLS_CA_FILE) the channel
    is TLS, the coordinator's certificate verified against that PEM CA bundle; `cert_file` and `key_file` (default
    $ALIGNMENT_TLS_CERT_FILE, $ALIGNMENT_TLS_KEY_FILE) add a client certificate for mTLS. `server_name` overrides
    the name the certificate must carry (default: the address's host).
    """

    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        server_name: str | None = None,
    ) -> None:
        self.address = address or os.environ.get("ALIGNMENT_COORDINATOR") or DEFAULT_ADDRESS
        token = token if token is not None else os.environ.get("ALIGNMENT_TOKEN") or None
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        credentials = channel_credentials(
            ca_file if ca_file is not None else _env("ALIGNMENT_TLS_CA_FILE"),
            cert_file if cert_file is not None else _env("ALIGNMENT_TLS_CERT_FILE"),
            key_file if key_file is not None else _env("ALIGNMENT_TLS_KEY_FILE"),
        )
        #: Whether the channel is TLS.
        self.tls = credentials is not None
        options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        self._channel = grpc.secure_channel(self.address, credentials, options) if credentials else grpc.insecure_channel(self.address)
        self._stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _client_error(err) from None

    def run(self, spec: Spec, run_id: str | None = None, *, base_dir: str | os.PathLike[str] | None = None) -> coordinator_pb2.Run:
        """StartRun. `spec`: a RunSpec, a loaded RunFile, or a mapping as a run file holds it (a RunSpec, or `run_id`
        and `spec`; relative URIs resolved against `base_dir`, default the working directory). `run_id` overrides
        the file's; none = the coordinator names the run. The same run_id and spec again resumes a stopped run.
        A value outside its range (learning_rate in (0, 1), rounds at most 20, ...) raises ClientError
        INVALID_ARGUMENT naming the field, as the coordinator would, before any call."""
        if isinstance(spec, Mapping):
            spec = run_from_document(dict(spec), Path(base_dir or os.getcwd()), os.environ)
        if isinstance(spec, RunFile):
            run_id = run_id if run_id is not None else spec.run_id
            spec = spec.spec
        for field, reason in range_violations(spec)[:1]:
            raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid spec.{field}: {reason}", f"spec.{field}")
        request = coordinator_pb2.StartRunRequest(spec=spec, run_id=run_id or "")
        return self._call(self._stub.StartRun, request, START_TIMEOUT_S).run

    def run_file(self, path: str | os.PathLike[str], run_id: str | None = None) -> coordinator_pb2.Run:
        """StartRun with a run file (YAML or JSON, as `npx alignment run -f` reads it: see run_file.py)."""
        return self.run(load_run_file(path), run_id)

    def get(self, run_id: str) -> coordinator_pb2.Run:
        """GetRun."""
        return self._call(self._stub.GetRun, coordinator_pb2.GetRunRequest(run_id=run_id)).run

    def ls(self, limit: int | None = None) -> list[coordinator_pb2.Run]:
        """ListRuns: the caller's runs (every run for an admin), oldest first; all of them or the first `limit`."""
        runs: list[coordinator_pb2.Run] = []
        token = ""
        while limit is None or len(runs) < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(runs))
            page = self._call(self._stub.ListRuns, coordinator_pb2.ListRunsRequest(page_size=size, page_token=token))
            runs.extend(page.runs)
            token = page.next_page_token
            if not token:
                break
        return runs

    def cancel(self, run_id: str) -> coordinator_pb2.Run:
        """CancelRun: the run ends CANCELLED (FAILED_PRECONDITION for a SUCCEEDED one)."""
        return self._call(self._stub.CancelRun, coordinator_pb2.CancelRunRequest(run_id=run_id)).run

    def delete_run(self, run_id: str) -> coordinator_pb2.DeleteRunResponse:
        """DeleteRun: the run's directory (every stage's outputs, checkpoints and exports) and its records; answers
        the bytes freed. FAILED_PRECONDITION for a RUNNING or PENDING run (cancel it first), NOT_FOUND for an unknown
        one, PERMISSION_DENIED unless the caller owns the run or is an admin."""
        return self._call(self._stub.DeleteRun, coordinator_pb2.DeleteRunRequest(run_id=run_id))

    def watch(self, run_id: str) -> Iterator[coordinator_pb2.WatchRunResponse]:
        """WatchRun's events (``event.WhichOneof("event")``: "stage", "progress", "round_metrics", then "run"), until
        the run ends: the last event holds the ended run. No deadline; closing the iterator cancels the call."""
        call = self._stub.WatchRun(coordinator_pb2.WatchRunRequest(run_id=run_id), metadata=self._metadata)
        try:
            for event in call:
                yield event
                if event.WhichOneof("event") == "run":
                    return
        except grpc.RpcError as err:
            raise _client_error(err) from None
        finally:
            call.cancel()

    def wait(self, run_id: str) -> coordinator_pb2.Run:
        """Watches the run to its end and returns it (GetRun's view, with every stage and metric)."""
        for _ in self.watch(run_id):
            pass
        return self.get(run_id)
