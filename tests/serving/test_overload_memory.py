"""Far past capacity: excess is refused fast, accepted work completes, memory stays bounded.

The server runs as its own process so its resident memory can be read from /proc.
Numbers are printed (pytest -s) and reported in docs/reliability.md; the asserted
bounds are deliberately loose so that a slow machine cannot fail them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import grpc
import numpy as np

from serving.api import open_inference_pb2_grpc
from tests.helpers.requests import random_images, v2_request
from tests.serving.test_main import start, wait_ready

RSS_BOUND_MB = 400  # growth allowed over the idle server during overload


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def drive(address: str, concurrency: int, batch: int, seconds: float, pid: int):
    request = v2_request(random_images(batch, seed=1))
    codes: Counter = Counter()
    reject_latency: list[float] = []
    ok_latency: list[float] = []
    peak = 0.0
    end = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)

        async def worker():
            while time.monotonic() < end:
                start_t = time.monotonic()
                try:
                    response = await stub.ModelInfer(request, timeout=30)
                    assert response.outputs[0].shape == [batch, 10]
                    codes["OK"] += 1
                    ok_latency.append(time.monotonic() - start_t)
                except grpc.aio.AioRpcError as exc:
                    codes[exc.code().name] += 1
                    if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                        reject_latency.append(time.monotonic() - start_t)
                        await asyncio.sleep(0.005)  # a polite client backs off a little

        async def sampler():
            nonlocal peak
            while time.monotonic() < end:
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(0.1)

        started = time.monotonic()
        await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return codes, (reject_latency, ok_latency), peak, elapsed


def test_overload_is_refused_fast_and_memory_stays_bounded(repo):
    proc, port = start(
        repo,
        "--max-queue-images",
        "1024",
        "--max-batch-size",
        "256",
        "--max-images-per-request",
        "256",
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_ready(proc)
        idle = rss_mb(proc.pid)
        base, _, _, base_s = asyncio.run(drive(address, 4, 64, 2, proc.pid))
        over, rejects, peak, _ = asyncio.run(drive(address, 64, 256, 5, proc.pid))
        after, _, _, after_s = asyncio.run(drive(address, 4, 64, 2, proc.pid))
        final = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)
    base_rate, after_rate = base["OK"] / base_s, after["OK"] / after_s
    rejects, accepted = rejects
    p99_reject = float(np.percentile(rejects, 99)) if rejects else 0.0
    p50_reject = float(np.percentile(rejects, 50)) if rejects else 0.0
    p50_ok = float(np.percentile(accepted, 50))
    print(
        f"\noverload: {dict(over)}; reject p50 {p50_reject * 1e3:.1f} ms p99 "
        f"{p99_reject * 1e3:.1f} ms; accepted p50 {p50_ok * 1e3:.1f} ms; "
        f"rss idle {idle:.0f} MB, peak {peak:.0f} MB, after {final:.0f} MB; "
        f"throughput before {base_rate:.0f} req/s, after {after_rate:.0f} req/s"
    )
    assert set(over) <= {"OK", "RESOURCE_EXHAUSTED"}, over
    assert over["RESOURCE_EXHAUSTED"] > 0 and over["OK"] > 0
    # Rejection needs no compute, but the request bytes still cross a saturated connection.
    assert p99_reject < 2.0
    assert peak - idle < RSS_BOUND_MB
    assert set(base) == {"OK"} and set(after) == {"OK"}
    assert after_rate > 0.5 * base_rate
