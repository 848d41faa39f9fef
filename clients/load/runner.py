"""The closed loop: C requests in flight, every response verified.

One process, one asyncio loop. ``concurrency`` workers each send a request, wait for its
answer, check it and send the next one, so exactly C requests are outstanding at any
moment (a closed loop: the offered load adapts to the server's speed instead of piling
up). How a request travels is the transport's business (:mod:`clients.load.transport`).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from clients.connection import ClientError
from clients.load.checks import BadResponse, Expect
from clients.load.config import GRPC_APIS, HTTP_APIS, LoadConfig
from clients.load.grpc_transport import GrpcTransport
from clients.load.stats import LoadResult
from clients.load.transport import RequestFailed, Transport
from clients.optional import PLOT_EXTRA

OK = "OK"
INVALID = "INVALID_RESPONSE"
# After a failure (not a wrong answer) a worker pauses: a failing server answers at once,
# and spinning on it would only burn the CPU the server needs.
ERROR_PAUSE_S = 0.01


@dataclass
class Progress:
    """A snapshot for progress lines."""

    elapsed: float
    phase: str
    requests: int
    images: int
    errors: int
    rate_images: float
    p50_ms: float


@dataclass(frozen=True)
class Outcome:
    """One request as the load generator saw it (times from ``time.perf_counter``)."""

    started: float
    finished: float
    # OK, INVALID_RESPONSE or the failure's status name.
    code: str
    # False during warm-up.
    measured: bool

    @property
    def ok(self) -> bool:
        """The request succeeded and its answer was right."""
        return self.code == OK

    @property
    def seconds(self) -> float:
        """Its latency."""
        return self.finished - self.started


ProgressFn = Callable[[Progress], None]
OutcomeFn = Callable[[Outcome], None]
Hook = Callable[[], None]


def open_transport(config: LoadConfig, expect: Expect, connection: Any = None) -> Transport:
    """The transport serving ``config.api``; ``connection`` is a shared one to reuse, if any
    (a grpc.aio channel for the gRPC APIs, an aiohttp client session for the HTTP ones)."""
    if config.api in GRPC_APIS:
        return GrpcTransport(config, expect, connection)
    if config.api in HTTP_APIS:
        # aiohttp comes with the clients' extra; the gRPC APIs work without it.
        try:
            from clients.load.http_transport import HttpTransport
        except ModuleNotFoundError as exc:
            raise ClientError(
                f"the HTTP APIs need {exc.name}, which is not installed; "
                f"install the clients' extra: pip install '{PLOT_EXTRA}'"
            ) from None
        return HttpTransport(config, expect, connection)
    raise ValueError(f"no transport for api {config.api!r}")


async def run_load(
    config: LoadConfig,
    progress: ProgressFn | None = None,
    on_measure_start: Hook | None = None,
    on_measure_end: Hook | None = None,
    channel: Any = None,
    *,
    on_outcome: OutcomeFn | None = None,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Run the closed loop and return what the measured window saw.

    Warm-up requests run the same way but are not recorded. New requests stop when the
    measured window has lasted ``duration`` seconds, ``max_requests`` were started or
    ``stop`` is set; requests in flight then finish and count. ``on_measure_start`` /
    ``on_measure_end`` are called at the window's edges (the benchmark reads CPU counters
    there); ``on_outcome`` sees every request, warm-up included. ``channel`` is a shared
    connection for the transport to reuse (see :func:`open_transport`). Raises
    ClientError when the first request fails: wrong model, unreachable server.
    """
    transport = open_transport(config, Expect(batch=config.batch), channel)
    try:
        try:
            await transport.probe()
        except BadResponse as exc:
            address = config.base_url() if config.api in HTTP_APIS else config.endpoint.address
            raise ClientError(f"{address} sent an invalid response: {exc}") from None
        loop = _ClosedLoop(config, transport, on_outcome, stop)
        return await loop.run(progress, on_measure_start, on_measure_end)
    finally:
        await transport.close()


def run_load_sync(config: LoadConfig, progress: ProgressFn | None = None) -> LoadResult:
    """:func:`run_load` on a fresh event loop (for callers that are not async)."""
    return asyncio.run(run_load(config, progress))


class _ClosedLoop:
    """The workers, the measured window and what it recorded."""

    def __init__(
        self,
        config: LoadConfig,
        transport: Transport,
        on_outcome: OutcomeFn | None,
        stop: threading.Event | None,
    ) -> None:
        self.config = config
        self.transport = transport
        self.on_outcome = on_outcome
        self.stop = stop
        self.begin = time.perf_counter()
        self.measure_from = self.begin + config.warmup
        self.stop_at = self.measure_from + config.duration
        self.latencies: list[float] = []
        self.done_at: list[float] = []
        self.errors: Counter[str] = Counter()
        self.counter = itertools.count()
        self.started = 0
        # Every completion, warm-up included: the progress line shows the live rate.
        self.completed = 0
        self.window_open = False
        self._on_start: Hook | None = None

    def _open_window(self) -> None:
        if not self.window_open:
            self.window_open = True
            if self._on_start is not None:
                self._on_start()

    def _finished(self, t_start: float) -> bool:
        config = self.config
        return (
            t_start >= self.stop_at
            or (config.max_requests > 0 and self.started >= config.max_requests)
            or (self.stop is not None and self.stop.is_set())
        )

    async def _worker(self, w: int) -> None:
        clock = time.perf_counter
        while True:
            t_start = clock()
            if self._finished(t_start):
                return
            measured = t_start >= self.measure_from
            if measured:
                self._open_window()
                self.started += 1
            code = OK
            try:
                await self.transport.send(w, next(self.counter))
            except RequestFailed as exc:
                code = exc.code
            except BadResponse:
                code = INVALID
            t_end = clock()
            self.completed += 1
            if measured:
                if code == OK:
                    self.latencies.append(t_end - t_start)
                    self.done_at.append(t_end - self.measure_from)
                else:
                    self.errors[code] += 1
            if self.on_outcome is not None:
                self.on_outcome(Outcome(t_start, t_end, code, measured))
            if code not in (OK, INVALID):
                await asyncio.sleep(ERROR_PAUSE_S)

    async def _report(self, show: ProgressFn) -> None:
        clock = time.perf_counter
        last_n, last_t, last_seen = 0, clock(), 0
        while True:
            await asyncio.sleep(1.0)
            now = clock()
            n = len(self.latencies)
            recent = self.latencies[last_seen:]
            show(
                Progress(
                    elapsed=now - self.begin,
                    phase="warm-up" if now < self.measure_from else "measuring",
                    requests=n,
                    images=n * self.config.batch,
                    errors=sum(self.errors.values()),
                    rate_images=(self.completed - last_n) * self.config.batch / (now - last_t),
                    p50_ms=float(np.median(recent) * 1000) if recent else math.nan,
                )
            )
            last_n, last_t, last_seen = self.completed, now, n

    async def run(
        self,
        progress: ProgressFn | None,
        on_measure_start: Hook | None,
        on_measure_end: Hook | None,
    ) -> LoadResult:
        config = self.config
        self._on_start = on_measure_start
        reporter = asyncio.create_task(self._report(progress)) if progress is not None else None
        workers = [asyncio.create_task(self._worker(w)) for w in range(config.concurrency)]
        try:
            # A request the server never answers (a stream has no per-request deadline) must
            # not keep the run going forever: everything ends one timeout after the window.
            done, stuck = await asyncio.wait(
                workers, timeout=config.warmup + config.duration + config.timeout
            )
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
            if stuck:
                self.errors["DEADLINE_EXCEEDED"] += len(stuck)
            for task in done:
                task.result()  # a bug in a worker surfaces here instead of vanishing
        finally:
            for task in workers:
                task.cancel()
            if reporter is not None:
                reporter.cancel()
        end = time.perf_counter()
        self._open_window()  # a run shorter than its warm-up still reports an (empty) window
        if on_measure_end is not None:
            on_measure_end()
        elapsed = (self.done_at and max(self.done_at)) or max(0.0, end - self.measure_from)
        expect = self.transport.expect
        return LoadResult(
            api=config.api,
            model=expect.model or config.model,
            version=expect.version,
            provider=expect.provider,
            concurrency=config.concurrency,
            batch=config.batch,
            elapsed=float(elapsed),
            latencies=np.asarray(self.latencies, dtype=np.float64),
            completions=np.asarray(self.done_at, dtype=np.float64),
            errors=dict(self.errors),
        )
