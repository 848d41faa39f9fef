"""What counting Triton statistics costs on the unary inference path.

    python -m bench.stats_overhead [--requests 3000] [--rounds 5]

Two measurements, printed as a table:

* per operation (timeit, best of 7): a request's ``with stats.request()``, one batch's
  ``batch_done``, and the batcher's observer calls per one-image request through ``FanOut``
  (Prometheus + statistics) against the Prometheus observer alone;
* end to end in process: ``DataPlane.infer`` of one image, awaited one at a time, on the
  null model (so the model costs nearly nothing), with statistics on and with them
  switched off (the per-version accumulator swapped for a no-op), rounds interleaved.

No gRPC: the transport would add ~100x the difference and hide it in noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.models import NULL_MODEL, null_model, publish
from serving.app import ServerApp
from serving.batching.batcher import BatchObserver, FanOut
from serving.metrics import Metrics
from serving.settings import Settings
from serving.statistics import VersionStats


def per_operation() -> dict[str, float]:
    """Nanoseconds per call of each accounting step."""
    stats = VersionStats("m", "1")
    prometheus = Metrics().for_version("m", "1")
    both = FanOut(prometheus, stats)

    def request() -> None:
        with stats.request():
            pass

    def observe(observer: BatchObserver) -> None:
        # What the batcher reports for one one-image request: enqueue, dequeue, batch.
        observer.queue_depth(1)
        observer.queue_depth(0)
        observer.batch_done(1, [0.0001], 0.0002)

    def best(fn: Callable[[], object], number: int = 20000) -> float:
        return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e9

    prom_only = best(lambda: observe(prometheus))
    fanned = best(lambda: observe(both))
    return {
        "with stats.request() (per request)": best(request),
        "VersionStats.batch_done (per batch)": best(lambda: stats.batch_done(1, [0.0001], 0.0002)),
        "observer calls, Prometheus only": prom_only,
        "observer calls, FanOut(Prometheus, stats)": fanned,
        "=> statistics per 1-image request": best(request) + fanned - prom_only,
    }


class _Off:
    """Statistics switched off: the same calls, doing nothing."""

    def request(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    def snapshot(self) -> None:
        return None


async def end_to_end(repo: Path, requests: int, rounds: int) -> dict[str, float]:
    """Median wall and CPU microseconds per awaited DataPlane.infer, statistics on vs off."""
    settings = Settings(
        model_repository=repo,
        grpc_host="127.0.0.1",
        grpc_port=0,
        http_port=-1,  # the data plane is called directly: no transport needed
        metrics_port=-1,
        repository_poll_seconds=0,
    )
    app = ServerApp(settings)
    await app.start()
    try:
        dp = app.dataplane
        target = dp.resolve(NULL_MODEL)
        on_stats, on_observer = target.stats, target.batcher._observer
        off_observer = target.metrics
        image = [("images", np.random.default_rng(0).random((1, 28, 28), dtype=np.float32))]
        for _ in range(500):  # warm up
            await dp.infer(NULL_MODEL, "", image)
        # Wall time and CPU time (all threads of this process): on shared cores the CPU
        # time is the steadier of the two.
        wall: dict[str, list[float]] = {"on": [], "off": []}
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(rounds):
            # Alternate which goes first: the machine drifts (shared cores).
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                target.stats = on_stats if mode == "on" else _Off()  # type: ignore[assignment]
                target.batcher._observer = on_observer if mode == "on" else off_observer
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(requests):
                    await dp.infer(NULL_MODEL, "", image)
                wall[mode].append((time.perf_counter() - start) / requests * 1e6)
                cpu[mode].append((time.process_time() - start_cpu) / requests * 1e6)
        target.stats, target.batcher._observer = on_stats, on_observer
        out: dict[str, float] = {}
        for label, samples in (("wall", wall), ("CPU", cpu)):
            on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
            out[f"{label} us/request, statistics on"] = on
            out[f"{label} us/request, off"] = off
            out[f"{label} difference us"] = on - off
        return out
    finally:
        await app.stop(0)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print both tables; returns every number printed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    operations = per_operation()
    for name, ns in operations.items():
        print(f"{name:45s} {ns:8.0f} ns")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        publish(repo, NULL_MODEL, null_model(), "null model: softmax of the first pixels")
        result = asyncio.run(end_to_end(repo, args.requests, args.rounds))
    for name, us in result.items():
        print(f"{name:45s} {us:8.2f} us")
    return {**operations, **result}


if __name__ == "__main__":
    main()
