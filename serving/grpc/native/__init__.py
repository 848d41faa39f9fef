"""The native gRPC front end: C++ receives and answers calls, Python handles them in bursts.

``frontend.cc`` (built on first use, serving/native_build.py) runs grpc++'s async generic
server; every call whose request has arrived is queued, and the event loop takes the whole
queue at once when woken. Each call then goes through exactly the handlers the grpc.aio server
uses (serving/grpc/methods.py's table, wrapped by serving/grpc/calls.py: request ids, errors
to statuses, metrics, logs) with a context that has what those handlers use, and its answer
goes back to C++. Calls taken in one burst reach the batcher in one loop iteration, so at batch
1 batches form as they do over REST.

What it does not do (the Python front end does; ``--grpc-frontend python``, the default):
streaming methods (ModelStreamInfer, ClassifyStream, health Watch, reflection) answer
UNIMPLEMENTED naming the flag; a call the client cancels still computes (its answer is
dropped); and TLS is refused at start (Debian's grpc++ links the system OpenSSL beside the TLS
libraries other wheels in the process bring: a TLS server crashed in the test suite), so TLS is
terminated in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import grpc

from serving.auth import DENIED
from serving.grpc.calls import REQUEST_ID_KEY, RequestIds
from serving.grpc.interceptors import AuthInterceptor
from serving.grpc.methods import MethodTable
from serving.native_build import build, load_module

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("frontend.cc")
MODULE = "_native_frontend"
STREAMS_ELSEWHERE = (
    "streaming methods are served by the Python front end: restart the server with "
    "--grpc-frontend python to use {method}"
)
SHUTTING_DOWN = "the server is shutting down; retry on another instance"

Metadata = Sequence[tuple[str, str | bytes]]


def prepare() -> None:
    """Compile the front end now if it is not built yet (NativeUnavailable if it cannot be):
    before worker processes start, so that they find it built."""
    build(SOURCE, MODULE, module=True)


def load() -> ModuleType:
    """The built front end (compiled on first use); NativeUnavailable if it cannot be."""
    return load_module(SOURCE, MODULE)


class _Abort(Exception):
    """Raised by NativeContext.abort, as grpc.aio's context raises AbortError."""


class _Details:
    """The part of grpc.HandlerCallDetails the method table reads."""

    __slots__ = ("invocation_metadata", "method")

    def __init__(self, method: str, metadata: Metadata) -> None:
        self.method = method
        self.invocation_metadata = metadata


class NativeContext:
    """What our handlers (and grpc's health servicer) use of grpc.aio's servicer context."""

    __slots__ = ("_deadline", "_metadata", "code", "details", "trailing")

    def __init__(self, metadata: Metadata, remaining: float | None) -> None:
        self._metadata = metadata
        self._deadline = None if remaining is None else time.monotonic() + remaining
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: Sequence[tuple[str, str]] = ()

    def invocation_metadata(self) -> Metadata:
        """The client's metadata."""
        return self._metadata

    def time_remaining(self) -> float | None:
        """Seconds to the client's deadline, None without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        """Trailing metadata of the answer."""
        self.trailing = tuple(metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        """The answer's status code."""
        self.code = code

    def set_details(self, details: str) -> None:
        """The answer's status message."""
        self.details = details

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> None:
        """End the call with ``code`` (raises, like grpc.aio's)."""
        self.code, self.details = code, details
        if trailing_metadata:
            self.trailing = tuple((k, str(v)) for k, v in trailing_metadata)
        raise _Abort


class NativeServer:
    """Serves ``methods``' unary methods through the native front end."""

    def __init__(self, methods: MethodTable, ids: RequestIds, auth: AuthInterceptor | None):
        self._methods = methods
        self._ids = ids
        self._auth = auth
        self._module: ModuleType | None = None
        self._frontend: object = None  # the C++ front end's handle while it runs
        self._wake_fd = -1
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False

    def start(
        self,
        host: str,
        port: int,
        options: Sequence[tuple[str, int]],
    ) -> int:
        """Build (first time) and start the front end on ``host:port`` (plaintext: settings
        refuse TLS with this front end); the bound port."""
        self._module = load()
        self._frontend, bound, self._wake_fd = self._module.start(host, port, list(options))
        asyncio.get_running_loop().add_reader(self._wake_fd, self._take)
        return bound

    def _take(self) -> None:
        with contextlib.suppress(BlockingIOError):  # already reset by an earlier wake-up
            os.read(self._wake_fd, 8)  # resets the eventfd's counter
        assert self._module is not None
        loop = asyncio.get_running_loop()
        for call in self._module.take(self._frontend):
            if call is None:  # answered in C++ (it could not be handed over)
                continue
            task = loop.create_task(self._answer(*call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, call: int, method: str, request: bytes, metadata: Metadata, remaining: float | None
    ) -> None:
        """Handle one call and answer it exactly once, whatever happens."""
        context = NativeContext(metadata, remaining)
        code, answer = grpc.StatusCode.OK, b""
        try:
            code, answer = await self._handle(context, method, request, metadata)
        except asyncio.CancelledError:  # stop() ran out of grace
            code, context.details = grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN
            raise
        except Exception:  # a handler outside our error table (health, reflection) failed
            log.exception("%s failed", method)
            code, context.details = grpc.StatusCode.UNKNOWN, "Unexpected error"
        finally:
            self._finish(call, code, context, answer)

    async def _handle(
        self, context: NativeContext, method: str, request: bytes, metadata: Metadata
    ) -> tuple[grpc.StatusCode, bytes]:
        if self._stopping:
            context.details = SHUTTING_DOWN
            return grpc.StatusCode.UNAVAILABLE, b""
        handler = self._methods.service(_Details(method, metadata))  # type: ignore[arg-type]
        if handler is None:
            context.details = "Method not found!"  # grpc.aio's words for the same case
            return grpc.StatusCode.UNIMPLEMENTED, b""
        if handler.unary_unary is None:
            context.details = STREAMS_ELSEWHERE.format(method=method)
            return grpc.StatusCode.UNIMPLEMENTED, b""
        if self._auth is not None and not self._auth.allows(method, metadata):
            context.details = DENIED
            context.trailing = ((REQUEST_ID_KEY, self._ids.of(context)),)  # type: ignore[arg-type]
            return grpc.StatusCode.UNAUTHENTICATED, b""
        parse = handler.request_deserializer
        try:
            response = await handler.unary_unary(parse(request) if parse else request, context)
        except _Abort:
            return context.code or grpc.StatusCode.UNKNOWN, b""
        if context.code is not None and context.code is not grpc.StatusCode.OK:
            return context.code, b""
        serialize = handler.response_serializer
        return grpc.StatusCode.OK, serialize(response) if serialize else response

    def _finish(
        self, call: int, code: grpc.StatusCode, context: NativeContext, answer: bytes
    ) -> None:
        assert self._module is not None
        details = "" if code is grpc.StatusCode.OK else context.details
        self._module.finish(call, code.value[0], details, answer, context.trailing)

    async def stop(self, grace: float) -> None:
        """Answer new calls UNAVAILABLE, give in-flight ones ``grace`` seconds, then stop."""
        if self._module is None or self._frontend is None:
            return
        self._stopping = True
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        asyncio.get_running_loop().remove_reader(self._wake_fd)
        self._take_left()
        await asyncio.to_thread(self._module.shutdown, self._frontend, 0.0)
        self._frontend = None

    def _take_left(self) -> None:
        # Calls read after the last wake-up: answered (UNAVAILABLE) before the C++ side stops.
        assert self._module is not None
        for call in self._module.take(self._frontend):
            if call is not None:
                context = NativeContext((), None)
                context.details = SHUTTING_DOWN
                self._finish(call[0], grpc.StatusCode.UNAVAILABLE, context, b"")
