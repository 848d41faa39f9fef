"""What every HTTP API call goes through, in one place: request id, auth, body limits,
errors -> status, metrics and logs. The HTTP counterpart of the gRPC interceptor.
"""

from __future__ import annotations

import itertools
import logging
import os
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from serving.auth import DENIED, TokenCheck
from serving.errors import InvalidInput, TooLarge, Unauthenticated
from serving.http.errors import error_response, status_of
from serving.logs import log_access
from serving.metrics import Metrics
from serving.request_context import (
    WORKER_PID_KEY,
    RequestInfo,
    client_message,
    current_request,
)

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Request body bounds, enforced while the body streams in (never after buffering it)."""

    max_body_bytes: int


class Handlers:
    """Wraps endpoints so each one only converts and calls the data plane."""

    def __init__(
        self,
        metrics: Metrics,
        auth: TokenCheck,
        limits: HttpLimits,
        worker_pid: int | None = None,
    ) -> None:
        self._metrics = metrics
        # With worker processes every answer names the one that gave it.
        self._worker = str(worker_pid) if worker_pid is not None else None
        self._auth = auth
        self.limits = limits
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-h"
        self._series: dict[tuple, tuple] = {}
        # Recorded through the metrics' tally: written to Prometheus once per loop iteration.
        self._inflight = metrics.tally.gauge(metrics.inflight)

    def wrap(self, endpoint: Endpoint, api: str, method: str) -> Endpoint:
        """``endpoint`` with the request context, auth, error table and metrics around it."""

        async def call(request: Request) -> Response:
            given = request.headers.get("x-request-id", "")[:128]
            info = RequestInfo(given or f"{self._prefix}{next(self._ids)}", api, method)
            current_request.set(info)
            self._inflight.inc()
            status = 500
            try:
                if not self._auth.allows(method, request.headers.get("authorization")):
                    raise Unauthenticated(DENIED)
                response = await endpoint(request)
                response.headers["x-request-id"] = info.request_id
                status = response.status_code
                return self._stamp(response)
            except Exception as exc:  # ServingErrors and surprises alike go through the table
                status = status_of(exc)
                if status == 500:
                    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
                else:
                    log.debug("%s -> %d: %s", method, status, exc)
                message = client_message(exc, info.request_id)
                return self._stamp(error_response(status, message, info.request_id))
            finally:
                self._inflight.dec()
                self._finish(info, api, method, status)

        return call

    def _stamp(self, response: Response) -> Response:
        if self._worker is not None:
            response.headers[WORKER_PID_KEY] = self._worker
        return response

    def _finish(self, info: RequestInfo, api: str, method: str, status: int) -> None:
        seconds = info.finish(str(status))
        key = (info.model, info.version, api, method, status)
        series = self._series.get(key)
        if series is None:
            m = self._metrics
            requests = m.requests.labels(info.model, info.version, api, method, str(status))
            series = self._series[key] = (
                m.tally.counter(requests),
                m.tally.histogram(m.request_seconds.labels(info.model, api, method)),
            )
        series[0].inc()
        series[1].observe(seconds)
        log_access(info)

    def limited(self, request: Request) -> Request:
        """``request`` whose body is refused with 413 as soon as it exceeds the limit:
        at once from Content-Length, else while it streams in (chunked uploads)."""
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"request body of {declared} bytes exceeds the limit of {limit}")
        size = 0
        receive = request.receive

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit:
                raise TooLarge(f"request body exceeds the limit of {limit} bytes")
            return message

        return Request(request.scope, counted)

    async def body(self, request: Request) -> bytes:
        """The whole (limited) request body; gzip/deflate request encodings are inflated
        under the same limit (no decompression bombs)."""
        limit = self.limits.max_body_bytes
        data = await self.limited(request).body()
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            return _inflate(data, encoding, limit)
        if encoding != "identity":
            raise InvalidInput(f"unsupported Content-Encoding {encoding!r} (gzip, deflate)")
        return data


def _inflate(data: bytes, encoding: str, limit: int) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"request body is not valid {encoding} ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"decompressed request body exceeds the limit of {limit} bytes")
    return out
