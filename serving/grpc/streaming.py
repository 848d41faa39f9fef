"""Bidirectional streams: many requests in flight on one stream, bounded, errors per message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from serving.grpc.status import log_failure

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
_END = object()


async def pump(
    requests: AsyncIterator[Req],
    handle: Callable[[Req], Awaitable[Resp]],
    on_error: Callable[[Req, Exception], Resp],
    max_inflight: int,
) -> AsyncIterator[Resp]:
    """Handle each request concurrently and yield responses in completion order.

    At most ``max_inflight`` requests of the stream are in progress; reading
    pauses beyond that, which pushes back on the client through HTTP/2 flow
    control instead of growing memory. A failed request yields
    ``on_error(request, exc)`` and the stream goes on; a surprise is logged with its
    traceback (and, through the log filter, the stream's request id).
    """
    results: asyncio.Queue = asyncio.Queue()
    slots = asyncio.Semaphore(max_inflight)
    tasks: set[asyncio.Task] = set()

    async def one(request: Req) -> None:
        try:
            results.put_nowait(await handle(request))
        except Exception as exc:
            log_failure(log, "stream message", exc)
            results.put_nowait(on_error(request, exc))
        finally:
            slots.release()

    async def read() -> None:
        try:
            async for request in requests:
                await slots.acquire()
                task = asyncio.create_task(one(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*list(tasks))
        finally:
            results.put_nowait(_END)

    reader = asyncio.create_task(read())
    try:
        while (item := await results.get()) is not _END:
            yield item
        await reader  # re-raises a broken request stream
    finally:
        reader.cancel()
        for task in list(tasks):
            task.cancel()
