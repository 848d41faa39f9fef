"""One interceptor for every RPC of our services: auth, request ids, errors -> status, metrics.

Every answered RPC (success or error, unary or stream, authenticated or not) carries its
request id in the trailing metadata ``x-request-id``: the client's own, or a generated one.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from serving.auth import DENIED, TokenCheck
from serving.errors import InvalidInput
from serving.grpc.status import log_failure, status_of
from serving.logs import log_access
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
REQUEST_ID_KEY = "x-request-id"


class ServingInterceptor(grpc.aio.ServerInterceptor):
    """Maps errors to statuses in one place and times every RPC."""

    def __init__(
        self, metrics: Metrics, auth_token: str | None = None, worker_pid: int | None = None
    ) -> None:
        self._metrics = metrics
        self._auth = TokenCheck(auth_token)
        # With worker processes every answer names the one that gave it.
        self._trailer = ((WORKER_PID_KEY, str(worker_pid)),) if worker_pid is not None else ()
        self._cache: dict[str, grpc.RpcMethodHandler | None] = {}
        self._series: dict[tuple, tuple] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-"
        # Request bytes of an unauthenticated call are never parsed.
        self._deny_handler = grpc.unary_unary_rpc_method_handler(self._deny)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method_path = details.method
        if method_path.startswith(OPEN_SERVICES):
            return await continuation(details)
        if self._auth.enabled and not self._authorized(method_path, details.invocation_metadata):
            return self._deny_handler
        cached = self._cache.get(method_path, False)
        if cached is not False:
            return cached
        handler = await continuation(details)
        wrapped = self._wrap(method_path, handler) if handler is not None else None
        self._cache[method_path] = wrapped
        return wrapped

    def _authorized(self, method_path: str, metadata: Any) -> bool:
        header = next(
            (v for k, v in metadata or () if k == "authorization" and isinstance(v, str)), None
        )
        return self._auth.allows(method_path.rsplit("/", 1)[-1], header)

    async def _deny(self, _request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            DENIED,
            trailing_metadata=((REQUEST_ID_KEY, self._request_id(context)),),
        )

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

    def _request_id(self, context: grpc.aio.ServicerContext) -> str:
        """The client's ``x-request-id`` (at most 128 characters), else a new unique one."""
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_KEY:
                if value := str(value)[:128]:
                    return value
                break
        return f"{self._prefix}{next(self._ids)}"

    def _start(self, context: grpc.aio.ServicerContext, api: str, method: str) -> RequestInfo:
        info = RequestInfo(self._request_id(context), api, method)
        current_request.set(info)
        # One call: a second set_trailing_metadata would replace the first.
        context.set_trailing_metadata(((REQUEST_ID_KEY, info.request_id), *self._trailer))
        return info

    def _finish(self, info: RequestInfo, code: grpc.StatusCode) -> None:
        seconds = info.finish(code.name)
        api, method = info.api, info.method
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
        series[1].observe(seconds)
        log_access(info)

    async def _fail(
        self, context: grpc.aio.ServicerContext, info: RequestInfo, exc: BaseException
    ) -> grpc.StatusCode:
        info.code = status_of(exc).name
        code = log_failure(log, info.method, exc)
        context.set_code(code)
        context.set_details(client_message(exc, info.request_id))
        return code

    def _unary(self, behavior: Callable, api: str, method: str) -> Callable:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            info = self._start(context, api, method)
            self._metrics.inflight.inc()
            code = grpc.StatusCode.OK
            try:
                if type(request) is Undecodable:
                    raise InvalidInput(request.message)
                return await behavior(request, context)
            except Exception as exc:  # ServingErrors and surprises alike go through the table
                code = await self._fail(context, info, exc)
                return None
            finally:
                self._metrics.inflight.dec()
                self._finish(info, code)

        return call

    def _stream(self, behavior: Callable, api: str, method: str) -> Callable:
        async def call(requests: AsyncIterator, context: grpc.aio.ServicerContext) -> AsyncIterator:
            info = self._start(context, api, method)
            code = grpc.StatusCode.OK
            # Every stream message is in flight from when it is read until it is answered:
            # both stream methods answer each message exactly once (streaming.pump).
            inflight = self._metrics.inflight
            pending = 0

            async def counted() -> AsyncIterator:
                nonlocal pending
                async for request in _decoded(requests):
                    pending += 1
                    inflight.inc()
                    yield request

            try:
                async for response in behavior(counted(), context):
                    if pending:
                        pending -= 1
                        inflight.dec()
                    yield response
            except Exception as exc:  # ServingErrors and surprises alike go through the table
                code = await self._fail(context, info, exc)
            finally:
                inflight.dec(pending)  # messages never answered (stream failed or cancelled)
                self._finish(info, code)

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
