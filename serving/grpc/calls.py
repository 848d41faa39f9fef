"""What every RPC of our two services goes through: request ids, errors -> status, metrics.

Every answered RPC (success or error, unary or stream, authenticated or not) carries its
request id in the trailing metadata ``x-request-id``: the client's own, or a generated one.

The wrapping is applied once, when the handlers are registered (serving/grpc/methods.py),
not by a grpc.aio server interceptor: an interceptor costs the library's interceptor chain
and one more coroutine on every RPC (~10 us of CPU per call on the reference machine,
docs/performance.md), for a decision that never changes after the first call.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

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

API_OF = {
    "/inference.GRPCInferenceService/": "v2",
    "/digits.v1.DigitClassifier/": "typed",
}
REQUEST_ID_KEY = "x-request-id"


class RequestIds:
    """The client's ``x-request-id`` (at most 128 characters), else a new unique one."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-"

    def of(self, context: grpc.aio.ServicerContext) -> str:
        """This call's request id."""
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_KEY:
                if value := str(value)[:128]:
                    return value
                break
        return f"{self._prefix}{next(self._ids)}"


class CallHandling:
    """Maps errors to statuses in one place and times every RPC of a wrapped handler."""

    def __init__(self, metrics: Metrics, ids: RequestIds, worker_pid: int | None = None) -> None:
        self._metrics = metrics
        self._ids = ids
        # With worker processes every answer names the one that gave it.
        self._trailer = ((WORKER_PID_KEY, str(worker_pid)),) if worker_pid is not None else ()
        self._series: dict[tuple, tuple] = {}
        # Recorded through the metrics' tally: written to Prometheus once per loop iteration.
        self._inflight = metrics.tally.gauge(metrics.inflight)

    def wrap(self, method_path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` of ``/package.Service/Method`` with our per-call handling around it."""
        api = next(
            (name for prefix, name in API_OF.items() if method_path.startswith(prefix)), "other"
        )
        method = method_path.rsplit("/", 1)[-1]
        parse = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, api, method),
                request_deserializer=parse,
                response_serializer=_bytes_or(handler.response_serializer),
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(handler.stream_stream, api, method),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        raise TypeError(f"{method_path}: only unary-unary and stream-stream methods are wrapped")

    def _start(self, context: grpc.aio.ServicerContext, api: str, method: str) -> RequestInfo:
        info = RequestInfo(self._ids.of(context), api, method)
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
            requests = m.requests.labels(info.model, info.version, api, method, code.name)
            series = self._series[key] = (
                m.tally.counter(requests),
                m.tally.histogram(m.request_seconds.labels(info.model, api, method)),
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
            inflight = self._inflight
            inflight.inc()
            code = grpc.StatusCode.OK
            try:
                if type(request) is Undecodable:
                    raise InvalidInput(request.message)
                return await behavior(request, context)
            except Exception as exc:  # ServingErrors and surprises alike go through the table
                code = await self._fail(context, info, exc)
                return None
            finally:
                inflight.dec()
                self._finish(info, code)

        return call

    def _stream(self, behavior: Callable, api: str, method: str) -> Callable:
        async def call(requests: AsyncIterator, context: grpc.aio.ServicerContext) -> AsyncIterator:
            info = self._start(context, api, method)
            code = grpc.StatusCode.OK
            # Every stream message is in flight from when it is read until it is answered:
            # both stream methods answer each message exactly once (streaming.pump).
            inflight = self._inflight
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


def _bytes_or(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """``serializer`` that passes a response already serialised (bytes) through unchanged:
    handlers on the hot path build their answer's bytes themselves (V2 ModelInfer)."""
    if serializer is None:
        return None

    def serialize(response: Any) -> bytes:
        return response if type(response) is bytes else serializer(response)

    return serialize


async def _decoded(requests: AsyncIterator) -> AsyncIterator:
    async for request in requests:
        if type(request) is Undecodable:
            raise InvalidInput(request.message)
        yield request
