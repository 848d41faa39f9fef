"""The project's load generator driven for reliability tests, sampling the server's RSS."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from clients.connection import Endpoint
from clients.load import LoadConfig, Outcome, run_load


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class LoadResult:
    """What a load run saw, per request (codes include OK) and over time."""

    codes: Counter = field(default_factory=Counter)
    ok_latency: list[tuple[float, float]] = field(default_factory=list)  # (when, seconds)
    reject_latency: list[float] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (when, MiB)
    elapsed: float = 0.0

    @property
    def ok_rate(self) -> float:
        """Successful requests per second."""
        return self.codes["OK"] / self.elapsed if self.elapsed else 0.0

    def p(self, q: float, since: float = 0.0, until: float = float("inf")) -> float:
        """Latency percentile of successful requests that started in [since, until)."""
        values = [s for t, s in self.ok_latency if since <= t < until]
        return float(np.percentile(values, q)) if values else float("nan")


async def drive(
    address: str, pid: int, concurrency: int, batch: int, seconds: float, model: str = "cnn"
) -> LoadResult:
    """``concurrency`` workers send verified ``batch``-image ModelInfer requests for ``seconds``."""
    config = LoadConfig(
        Endpoint(address),
        model,
        api="v2",
        concurrency=concurrency,
        batch=batch,
        duration=seconds,
        warmup=0,
    )
    result = LoadResult()
    start = time.perf_counter()
    finished = asyncio.Event()

    def record(outcome: Outcome) -> None:
        result.codes[outcome.code] += 1
        if outcome.ok:
            result.ok_latency.append((outcome.started - start, outcome.seconds))
        elif outcome.code == "RESOURCE_EXHAUSTED":
            result.reject_latency.append(outcome.seconds)

    async def sampler() -> None:
        while not finished.is_set():
            result.rss.append((time.perf_counter() - start, rss_mb(pid)))
            await asyncio.sleep(0.25)

    sampling = asyncio.create_task(sampler())
    try:
        await run_load(config, on_outcome=record)
    finally:
        finished.set()
        await sampling
    result.elapsed = time.perf_counter() - start
    return result
