"""What recording one call's Prometheus series costs, written directly or through the tally.

    python -m bench.metrics_cost [--calls 20000]

A served batch-1 call makes these updates on the event loop: the in-flight gauge up and down,
the queue-depth gauge set twice, the request counter, the request-latency and queue-wait
histograms. Each is timed as CPU microseconds per call, with 1, 4 and 64 calls recorded per
loop iteration (a busy gRPC server hands its loop about one call per iteration; REST, streams
and in-process callers many), written straight to prometheus_client or through
serving/tally.py (plain adds, written once per iteration). Rounds interleaved, best of 3.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from serving import event_loop
from serving.metrics import _LATENCY_BUCKETS as LATENCY_BUCKETS  # the server's own
from serving.tally import Tally, TallyFlush

CALLS_PER_ITERATION = (1, 4, 64)
ROUNDS = 3


def _series(tallied: bool) -> tuple:
    registry = CollectorRegistry()
    tally = Tally()
    registry.register(TallyFlush(tally))
    inflight = Gauge("inflight", "-", registry=registry)
    depth = Gauge("depth", "-", ["model"], registry=registry).labels("m")
    requests = Counter("requests", "-", ["model"], registry=registry).labels("m")
    latency = Histogram("latency", "-", ["model"], buckets=LATENCY_BUCKETS, registry=registry)
    wait = Histogram("wait", "-", ["model"], buckets=LATENCY_BUCKETS, registry=registry)
    series = (inflight, depth, requests, latency.labels("m"), wait.labels("m"))
    if not tallied:
        return series
    return (
        tally.gauge(inflight),
        tally.gauge(depth),
        tally.counter(requests),
        tally.histogram(series[3]),
        tally.histogram(series[4]),
    )


async def _per_call(calls: int, per_iteration: int, tallied: bool) -> float:
    inflight, depth, requests, latency, wait = _series(tallied)
    start = time.process_time()
    for _ in range(calls // per_iteration):
        for _ in range(per_iteration):
            inflight.inc()
            depth.set(1)
            wait.observe(0.00002)
            depth.set(0)
            requests.inc()
            latency.observe(0.0003)
            inflight.dec()
        await asyncio.sleep(0)  # the end of a loop iteration: the tally writes here
    return (time.process_time() - start) / calls * 1e6


async def measure(calls: int) -> list[tuple[int, float, float]]:
    """(calls per iteration, direct us/call, tally us/call), best of interleaved rounds."""
    rows = []
    for per_iteration in CALLS_PER_ITERATION:
        direct = tallied = float("inf")
        for _ in range(ROUNDS):
            direct = min(direct, await _per_call(calls, per_iteration, False))
            tallied = min(tallied, await _per_call(calls, per_iteration, True))
        rows.append((per_iteration, direct, tallied))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args(argv)
    print(f"{'calls per loop iteration':>25} {'direct us/call':>15} {'tally us/call':>14}")
    for per_iteration, direct, tallied in event_loop.run(measure(args.calls)):
        print(f"{per_iteration:>25} {direct:>15.2f} {tallied:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
