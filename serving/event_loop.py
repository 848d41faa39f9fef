"""Which asyncio event loop runs the server: uvloop where it is installed, else asyncio's.

Measured on the 2-core CI machine (docs/performance.md, design choices): with uvloop a
bare grpc.aio server answers ~28% more batch-1 calls per second, and ours with two workers
13-17% more at 7-10% less CPU per call (one worker: inside the noise), because every gRPC call
costs the event loop about 16 callbacks and uvloop runs callbacks, futures and its selector
in C.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

EVENT_LOOPS = ("auto", "uvloop", "asyncio")


class EventLoopUnavailable(RuntimeError):
    """``--event-loop uvloop`` on a machine without uvloop."""


def resolve(kind: str) -> str:
    """``auto`` -> ``uvloop`` when importable, else ``asyncio``; other names as given.

    Raises EventLoopUnavailable for ``uvloop`` when it is not installed.
    """
    installed = importlib.util.find_spec("uvloop") is not None
    if kind == "auto":
        return "uvloop" if installed else "asyncio"
    if kind == "uvloop" and not installed:
        raise EventLoopUnavailable(
            "--event-loop uvloop: uvloop is not installed (pip install uvloop), "
            "or use --event-loop asyncio"
        )
    return kind


def loop_factory(resolved: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop function for :class:`asyncio.Runner`, for a :func:`resolve` d name."""
    if resolved == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], kind: str = "auto") -> T:
    """``asyncio.run(main)`` on the chosen kind of loop."""
    resolved = resolve(kind)
    log.info("event loop: %s", resolved)
    with asyncio.Runner(loop_factory=loop_factory(resolved)) as runner:
        return runner.run(main)
