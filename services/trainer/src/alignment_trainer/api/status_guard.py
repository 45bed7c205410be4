"""Status codes at the trainer's transport boundary (issue 12, "wrong codes").

grpcio answers request bytes that do not decode with INTERNAL ("Exception deserializing request!") and a handler's
unexpected exception with UNKNOWN. This interceptor makes the first INVALID_ARGUMENT naming the method, and the
second INTERNAL with a correlation id that is also in the log line carrying the stack, as the Node services do
(libs/service-kit/src/server.ts). Statuses a handler sets itself (``context.abort``) pass through with their code,
their message cut at MAX_STATUS_DETAILS characters as the Node services cut theirs (libs/service-kit
error-status.ts): a message echoing a 1 MiB field (``spec.preference.pairs.sha256: must be 64 hex digits, got
'fff…'``) does not fit in the trailers, and the client got no status until its deadline (tools/fuzz found it).
An INVALID_ARGUMENT whose message names a field also gets google.rpc.BadRequest details (api/bad_request.py).
"""

from __future__ import annotations

import uuid

import grpc

from alignment_trainer import logs
from alignment_trainer.api import bad_request

log = logs.get_logger("alignment_trainer.api")


MAX_STATUS_DETAILS = 2048


def clip_details(details: str | None) -> str | None:
    """A status message cut to MAX_STATUS_DETAILS characters, saying how many more there were."""
    if details is None or len(details) <= MAX_STATUS_DETAILS:
        return details
    return f"{details[:MAX_STATUS_DETAILS]}… ({len(details) - MAX_STATUS_DETAILS} more characters)"


class _ClippingContext:
    """The handler's ServicerContext, with every status message it sets cut by clip_details."""

    def __init__(self, inner: grpc.ServicerContext) -> None:
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def abort(self, code, details):
        return bad_request.abort(self._inner, code, clip_details(details))

    def set_details(self, details):
        return self._inner.set_details(clip_details(details))


class _Malformed:
    """What a tolerant deserializer returns for bytes that are not the method's request message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserialize):
    if deserialize is None:
        return None

    def decode(data: bytes):
        try:
            return deserialize(data)
        except Exception as err:  # noqa: BLE001 - any decode failure is the caller's bytes
            return _Malformed(f"{type(err).__name__}: {err}")

    return decode


def _handler_set_status(context: grpc.ServicerContext) -> bool:
    code = context.code() if hasattr(context, "code") else None
    return code is not None and code != grpc.StatusCode.OK


def _fail(rpc: str, request, context: grpc.ServicerContext, err: BaseException | None) -> None:
    if isinstance(request, _Malformed):
        bad_request.abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                          clip_details(f"request: is not a valid {rpc} request message ({request.reason})"))
    correlation_id = str(uuid.uuid4())
    log.error("request failed", exc_info=err, extra={"fields": {"rpc": rpc, "correlation_id": correlation_id}})
    reason = clip_details(f"{type(err).__name__}: {err}")
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {reason} (correlation id {correlation_id})")


class StatusGuardInterceptor(grpc.ServerInterceptor):
    """Malformed request bytes → INVALID_ARGUMENT; an exception no handler mapped → INTERNAL with a correlation id."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        rpc = (handler_call_details.method or "")[1:]
        deserialize = _tolerant(handler.request_deserializer)

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary_unary(request, context):
                if isinstance(request, _Malformed):
                    _fail(rpc, request, context, None)
                try:
                    return inner(request, _ClippingContext(context))
                except Exception as err:
                    if _handler_set_status(context):
                        raise
                    _fail(rpc, request, context, err)

            return grpc.unary_unary_rpc_method_handler(unary_unary, request_deserializer=deserialize,
                                                       response_serializer=handler.response_serializer)

        inner_stream = handler.unary_stream

        def unary_stream(request, context):
            if isinstance(request, _Malformed):
                _fail(rpc, request, context, None)
            try:
                yield from inner_stream(request, _ClippingContext(context))
            except Exception as err:
                if _handler_set_status(context):
                    raise
                _fail(rpc, request, context, err)

        return grpc.unary_stream_rpc_method_handler(unary_stream, request_deserializer=deserialize,
                                                    response_serializer=handler.response_serializer)
