"""The client over TLS and mTLS (README "TLS and identities"): the stack on mTLS (STACK_TLS_DIR, certificates made by
tools/deploy/make-certs.sh; the coordinator takes TLS_CLIENT_AUTH=optional and maps the `cli` certificate to an admin),
reached with a CA file, a client certificate, or the ALIGNMENT_TLS_* variables; plaintext, a foreign CA and
inconsistent arguments are refused. The micro inputs are not built (STACK_SKIP_MICRO): a spec refused naming its field
shows the call went through the coordinator's validation."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import grpc
import pytest

from alignment_client import Client, ClientError
from conftest import REPO, TOKENS, Stack, start_stack


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("tls-stack")
    certs = data_dir / "tls"
    with start_stack(data_dir, {"STACK_TLS_DIR": str(certs), "STACK_SKIP_MICRO": "1"}) as running:
        yield running, {"ca_file": str(certs / "ca.crt"), "cert_file": str(certs / "cli.crt"), "key_file": str(certs / "cli.key")}


def refused(call) -> ClientError:
    with pytest.raises(ClientError) as error:
        call()
    return error.value


def test_mtls_with_the_cli_certificate_is_an_admin(tls_stack) -> None:
    stack, files = tls_stack
    with Client(stack.coordinator, token="", **files) as client:
        assert client.tls
        assert client.ls() == []
        error = refused(lambda: client.run({"configuration": "spa"}, run_id="py-tls"))
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.field is not None and error.field.startswith("spec.")
        assert refused(lambda: client.delete_run("py-tls")).code == grpc.StatusCode.NOT_FOUND


def test_tls_with_a_ca_only_and_a_bearer_token(tls_stack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack, files = tls_stack
    with Client(stack.coordinator, token=TOKENS["alice"], ca_file=files["ca_file"]) as alice:
        assert alice.ls() == []
    # Without a token or a client certificate the coordinator does not know the caller.
    with Client(stack.coordinator, token="", ca_file=files["ca_file"]) as anonymous:
        assert refused(anonymous.ls).code == grpc.StatusCode.UNAUTHENTICATED
    # The ALIGNMENT_TLS_* variables are the defaults.
    for name, value in files.items():
        monkeypatch.setenv(f"ALIGNMENT_TLS_{name.removesuffix('_file').upper()}_FILE", value)
    with Client(stack.coordinator, token="") as client:
        assert client.tls and client.ls() == []


def test_plaintext_and_a_foreign_ca_are_refused(tls_stack, tmp_path) -> None:
    stack, _ = tls_stack
    with Client(stack.coordinator, token=TOKENS["alice"]) as plaintext:
        assert not plaintext.tls
        assert refused(plaintext.ls).code == grpc.StatusCode.UNAVAILABLE
    subprocess.run(["bash", str(REPO / "tools/deploy/make-certs.sh"), str(tmp_path), "cli"], check=True, capture_output=True)
    with Client(stack.coordinator, token=TOKENS["alice"], ca_file=tmp_path / "ca.crt", timeout=10) as foreign:
        assert refused(foreign.ls).code == grpc.StatusCode.UNAVAILABLE


def test_inconsistent_tls_arguments_name_the_argument(tmp_path) -> None:
    with pytest.raises(ValueError, match="^key_file: "):
        Client("127.0.0.1:1", cert_file=tmp_path / "a.crt")
    with pytest.raises(ValueError, match="^cert_file: "):
        Client("127.0.0.1:1", key_file=tmp_path / "a.key")
    (tmp_path / "a.crt").write_text("x")
    (tmp_path / "a.key").write_text("x")
    with pytest.raises(ValueError, match="^ca_file: must be set with cert_file"):
        Client("127.0.0.1:1", cert_file=tmp_path / "a.crt", key_file=tmp_path / "a.key")
    with pytest.raises(ValueError, match=f"^ca_file: {tmp_path / 'missing.crt'} cannot be read"):
        Client("127.0.0.1:1", ca_file=tmp_path / "missing.crt")
