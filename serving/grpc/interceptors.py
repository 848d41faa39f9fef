"""One interceptor for every RPC of our services: auth, request ids, errors -> status, metrics."""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from serving.errors import InvalidInput
from serving.grpc.status import status_of
from serving.metrics import Metrics
from serving.request_context import (
    WORKER_PID_KEY,
    RequestInfo,
    client_message,
    current_request,
)

log = logging.getLogger(__name__)

# Health and reflection stay open and unmetered: load balancers and grpcurl
# must reach them without credentials.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
API_OF = {
    "/inference.GRPCInferenceService/": "v2",
    "/digits.v1.DigitClassifier/": "typed",
}
# Only inference and repository RPCs need a token; liveness/metadata do not.
PUBLIC_METHODS = frozenset({"ServerLive", "ServerReady", "ModelReady", "ServerMetadata"})


class ServingInterceptor(grpc.aio.ServerInterceptor):
    """Maps errors to statuses in one place and times every RPC."""

    def __init__(
        self, metrics: Metrics, auth_token: str | None = None, worker_pid: int | None = None
    ) -> None:
        self._metrics = metrics
        # With worker processes every answer names the one that gave it.
        self._trailer = ((WORKER_PID_KEY, str(worker_pid)),) if worker_pid is not None else None
        self._token = auth_token.encode() if auth_token else None
        self._cache: dict[str, grpc.RpcMethodHandler | None] = {}
        self._series: dict[tuple, tuple] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method_path = details.method
        if method_path.startswith(OPEN_SERVICES):
            return await continuation(details)
        if self._token is not None and not self._authorized(
            method_path, details.invocation_metadata
        ):
            return _DENY
        cached = self._cache.get(method_path, False)
        if cached is not False:
            return cached
        handler = await continuation(details)
        wrapped = self._wrap(method_path, handler) if handler is not None else None
        self._cache[method_path] = wrapped
        return wrapped

    def _authorized(self, method_path: str, metadata: Any) -> bool:
        if method_path.rsplit("/", 1)[-1] in PUBLIC_METHODS:
            return True
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                # compare_digest: the time taken must not reveal how much matched.
                return scheme.lower() == "bearer" and hmac.compare_digest(
                    token.encode(), self._token or b""
                )
        return False

    def _wrap(self, method_path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        api = next(
            (name for prefix, name in API_OF.items() if method_path.startswith(prefix)), "other"
        )
        method = method_path.rsplit("/", 1)[-1]
        parse = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, api, method),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(handler.stream_stream, api, method),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _start(self, context: grpc.aio.ServicerContext) -> RequestInfo:
        request_id = ""
        for key, value in context.invocation_metadata() or ():
            if key == "x-request-id":
                request_id = str(value)[:128]
                break
        info = RequestInfo(request_id or f"{self._prefix}{next(self._ids)}")
        current_request.set(info)
        if self._trailer is not None:
            context.set_trailing_metadata(self._trailer)
        return info

    def _finish(
        self, info: RequestInfo, api: str, method: str, code: grpc.StatusCode, start: float
    ) -> None:
        key = (info.model, info.version, api, method, code)
        series = self._series.get(key)
        if series is None:
            # Label lookups take a lock and hash five strings; do them once per series.
            m = self._metrics
            series = self._series[key] = (
                m.requests.labels(info.model, info.version, api, method, code.name),
                m.request_seconds.labels(info.model, api, method),
            )
        series[0].inc()
        series[1].observe(time.perf_counter() - start)

    async def _fail(
        self, context: grpc.aio.ServicerContext, info: RequestInfo, exc: BaseException, method: str
    ) -> grpc.StatusCode:
        code = status_of(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.error("%s failed", method, exc_info=exc)
        else:
            log.debug("%s -> %s: %s", method, code.name, exc)
        context.set_code(code)
        context.set_details(client_message(exc, info.request_id))
        return code

    def _unary(self, behavior: Callable, api: str, method: str) -> Callable:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            info = self._start(context)
            self._metrics.inflight.inc()
            code = grpc.StatusCode.OK
            try:
                if type(request) is Undecodable:
                    raise InvalidInput(request.message)
                return await behavior(request, context)
            except Exception as exc:  # ServingErrors and surprises alike go through the table
                code = await self._fail(context, info, exc, method)
                return None
            finally:
                self._metrics.inflight.dec()
                self._finish(info, api, method, code, start)

        return call

    def _stream(self, behavior: Callable, api: str, method: str) -> Callable:
        async def call(requests: AsyncIterator, context: grpc.aio.ServicerContext) -> AsyncIterator:
            start = time.perf_counter()
            info = self._start(context)
            code = grpc.StatusCode.OK
            try:
                async for response in behavior(_decoded(requests), context):
                    yield response
            except Exception as exc:  # ServingErrors and surprises alike go through the table
                code = await self._fail(context, info, exc, method)
            finally:
                self._finish(info, api, method, code, start)

        return call


class Undecodable:
    """Stands in for request bytes that are not the expected protobuf message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that never raises: gRPC would turn that into UNKNOWN with a traceback
    in the log, where the client deserves INVALID_ARGUMENT and a reason."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return Undecodable(f"request bytes are not a valid {type_name} ({exc})")

    return parse


async def _decoded(requests: AsyncIterator) -> AsyncIterator:
    async for request in requests:
        if type(request) is Undecodable:
            raise InvalidInput(request.message)
        yield request


async def _deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "missing or invalid bearer token (send metadata 'authorization: Bearer <token>')",
    )


# Request bytes of an unauthenticated call are never parsed.
_DENY = grpc.unary_unary_rpc_method_handler(_deny)
