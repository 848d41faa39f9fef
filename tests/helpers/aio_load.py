"""A closed-loop V2 load for reliability tests, sampling the server's RSS from /proc."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import numpy as np

from serving.api import open_inference_pb2_grpc
from tests.helpers.requests import random_images, v2_request


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class LoadResult:
    """What a load run saw."""

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
    address: str, pid: int, concurrency: int, batch: int, seconds: float, backoff: float = 0.005
) -> LoadResult:
    """``concurrency`` workers send ``batch``-image ModelInfer requests for ``seconds``."""
    request = v2_request(random_images(batch, seed=1))
    result = LoadResult()
    start = time.monotonic()
    end = start + seconds
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)

        async def worker() -> None:
            while time.monotonic() < end:
                t0 = time.monotonic()
                try:
                    response = await stub.ModelInfer(request, timeout=30)
                    assert response.outputs[0].shape == [batch, 10]
                    result.codes["OK"] += 1
                    result.ok_latency.append((t0 - start, time.monotonic() - t0))
                except grpc.aio.AioRpcError as exc:
                    result.codes[exc.code().name] += 1
                    if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                        result.reject_latency.append(time.monotonic() - t0)
                        await asyncio.sleep(backoff)

        async def sampler() -> None:
            while time.monotonic() < end:
                result.rss.append((time.monotonic() - start, rss_mb(pid)))
                await asyncio.sleep(0.25)

        await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
    result.elapsed = time.monotonic() - start
    return result
