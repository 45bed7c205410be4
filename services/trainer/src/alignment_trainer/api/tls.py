"""Transport security of the trainer and of its DroSolver client, from the same TLS_* variables as the Node services
(libs/service-kit/src/tls-config.ts; README "TLS and identities"):

    TLS_CERT_FILE, TLS_KEY_FILE   the trainer's PEM certificate and key (served, and shown to the DroSolver)
    TLS_CA_FILE                   PEM CA bundle that peers are verified against; the DroSolver client uses TLS when set
    TLS_CLIENT_AUTH               none (default) | require: the handshake fails without a client certificate verified
                                  by TLS_CA_FILE (grpcio cannot ask for one without requiring it, so optional = none)
    TLS_ALLOWED_CLIENTS           comma-separated identities (certificate CN or DNS SAN) that may call; any other
                                  verified client is PERMISSION_DENIED
    TLS_RELOAD_INTERVAL_MS        how often the files are looked at again, default 30000; a changed, valid pair serves
                                  new connections
    ALLOW_PLAINTEXT               1: serve plaintext on a non-loopback address anyway (refused otherwise)
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from dataclasses import dataclass, field

import grpc

from alignment_trainer import logs

log = logs.get_logger("alignment_trainer.tls")


class TlsConfigError(ValueError):
    """Invalid TLS settings; the message names the variable."""


@dataclass(frozen=True)
class TlsSettings:
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    client_auth: str = "none"
    allowed_clients: tuple[str, ...] = field(default_factory=tuple)
    reload_interval_s: float = 30.0


def _file(env, name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not os.access(value, os.R_OK):
        raise TlsConfigError(f"{name}: {value} cannot be read")
    return value


def check_pair(cert_file: str, key_file: str) -> None:
    """Raises TlsConfigError unless the key matches the certificate (both PEM)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as err:
        raise TlsConfigError(f"TLS_CERT_FILE {cert_file} / TLS_KEY_FILE {key_file}: not a matching PEM certificate "
                             f"and key ({err})") from None


def settings_from_env(env=None) -> TlsSettings:
    env = os.environ if env is None else env
    cert_file, key_file, ca_file = _file(env, "TLS_CERT_FILE"), _file(env, "TLS_KEY_FILE"), _file(env, "TLS_CA_FILE")
    if bool(cert_file) != bool(key_file):
        raise TlsConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
    if cert_file and not ca_file:
        raise TlsConfigError("TLS_CA_FILE must be set with TLS_CERT_FILE (peers are verified against it)")
    client_auth = (env.get("TLS_CLIENT_AUTH") or "none").strip()
    if client_auth not in ("none", "optional", "require"):
        raise TlsConfigError(f"TLS_CLIENT_AUTH must be none, optional or require, got {env.get('TLS_CLIENT_AUTH')!r}")
    if client_auth != "none" and not cert_file:
        raise TlsConfigError(f"TLS_CLIENT_AUTH={client_auth} needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE")
    allowed = tuple(a.strip() for a in (env.get("TLS_ALLOWED_CLIENTS") or "").split(",") if a.strip())
    if allowed and client_auth != "require":
        raise TlsConfigError("TLS_ALLOWED_CLIENTS needs TLS_CLIENT_AUTH=require: without client certificates nobody "
                             "is identified")
    raw_interval = (env.get("TLS_RELOAD_INTERVAL_MS") or "").strip()
    try:
        interval_ms = int(raw_interval) if raw_interval else 30_000
    except ValueError:
        interval_ms = -1
    if interval_ms < 10:
        raise TlsConfigError(f"TLS_RELOAD_INTERVAL_MS must be an integer >= 10, got {raw_interval!r}")
    if cert_file:
        check_pair(cert_file, key_file)
    return TlsSettings(cert_file, key_file, ca_file, client_auth, allowed, interval_ms / 1000)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def is_loopback(host: str) -> bool:
    bare = host.strip("[]")
    return bare in ("localhost", "::1") or bare.startswith("127.")


class _ReloadingConfig:
    """grpcio's certificate-configuration fetcher: looks at the files at most once per interval (it is asked before
    handshakes) and hands over a new configuration when they changed and the pair is valid; else keeps the last."""

    def __init__(self, settings: TlsSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._material = self._load()

    def _load(self) -> tuple[bytes, bytes, bytes]:
        s = self._settings
        return _read(s.cert_file), _read(s.key_file), _read(s.ca_file)

    def configuration(self, material=None):
        cert, key, ca = material or self._material
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def __call__(self):
        with self._lock:
            if time.monotonic() - self._checked < self._settings.reload_interval_s:
                return None
            self._checked = time.monotonic()
            try:
                material = self._load()
                if material == self._material:
                    return None
                check_pair(self._settings.cert_file, self._settings.key_file)
            except (OSError, TlsConfigError) as err:
                log.warning("TLS files changed but are not a valid set: keeping the previous certificates",
                            extra={"fields": {"error": str(err)}})
                return None
            self._material = material
            log.info("TLS certificates reloaded", extra={"fields": {"cert_file": self._settings.cert_file}})
            return self.configuration(material)


def server_credentials(settings: TlsSettings) -> grpc.ServerCredentials:
    """TLS with certificates reloaded from the files; the handshake requires a verified client certificate when
    TLS_CLIENT_AUTH=require."""
    fetcher = _ReloadingConfig(settings)
    return grpc.dynamic_ssl_server_credentials(fetcher.configuration(), fetcher,
                                               require_client_authentication=settings.client_auth == "require")


def channel_credentials(settings: TlsSettings) -> grpc.ChannelCredentials | None:
    """TLS channel credentials from the files as they are now (None: plaintext); a new channel reads them again."""
    if not settings.ca_file:
        return None
    cert = _read(settings.cert_file) if settings.cert_file else None
    key = _read(settings.key_file) if settings.key_file else None
    return grpc.ssl_channel_credentials(root_certificates=_read(settings.ca_file), private_key=key, certificate_chain=cert)


def caller_identities(context: grpc.ServicerContext) -> list[str]:
    """The CN and subject alternative names of the caller's verified client certificate (empty: none)."""
    auth = context.auth_context() or {}
    names: list[str] = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth.get(key, []):
            name = value.decode() if isinstance(value, bytes) else str(value)
            if name not in names:
                names.append(name)
    return names


class IdentityInterceptor(grpc.ServerInterceptor):
    """PERMISSION_DENIED, before any handler runs, for a client whose certificate names no TLS_ALLOWED_CLIENTS entry."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._allowed = set(allowed)

    def _check(self, rpc: str, context: grpc.ServicerContext) -> None:
        identities = caller_identities(context)
        if not self._allowed.intersection(identities):
            log.info("request rejected", extra={"fields": {"rpc": rpc, "code": "PERMISSION_DENIED", "identities": identities}})
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"client certificate identity {identities} is not in TLS_ALLOWED_CLIENTS")

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        rpc = handler_call_details.method.lstrip("/")
        if handler.unary_unary:
            inner = handler.unary_unary

            def unary_unary(request, context):
                self._check(rpc, context)
                return inner(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, request_deserializer=handler.request_deserializer,
                                                       response_serializer=handler.response_serializer)
        inner_stream = handler.unary_stream

        def unary_stream(request, context):
            self._check(rpc, context)
            yield from inner_stream(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, request_deserializer=handler.request_deserializer,
                                                    response_serializer=handler.response_serializer)
