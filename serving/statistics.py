"""Per-version inference statistics, counted the way Triton's statistics extension counts them.

One :class:`VersionStats` per loaded model version, cumulative since it was loaded (a reload
starts from zero, as in Triton). Every update runs on the event loop thread: the data plane
counts each request's outcome and the batcher reports each computed batch through its observer
hook, which it calls on the loop after the compute thread hands the batch back. So the counters
are plain ints with no lock, and a reader on the loop always sees a consistent snapshot.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from serving.types import BatchStat, DurationStat, ModelStats

_NS = 1_000_000_000


class VersionStats:
    """Cumulative counters of one model version; :meth:`snapshot` gives Triton's view."""

    __slots__ = (
        "_batches",
        "_compute_count",
        "_compute_ns",
        "_executions",
        "_fail_count",
        "_fail_ns",
        "_images",
        "_last_ms",
        "_queue_count",
        "_queue_ns",
        "_success_count",
        "_success_ns",
        "model",
        "version",
    )

    def __init__(self, model: str, version: str) -> None:
        self.model = model
        self.version = version
        self._success_count = self._success_ns = 0
        self._fail_count = self._fail_ns = 0
        self._queue_count = self._queue_ns = 0
        self._compute_count = self._compute_ns = 0
        self._images = self._executions = 0
        self._last_ms = 0
        # batch size (images) -> [executions, total compute ns]
        self._batches: dict[int, list[int]] = {}

    # ------------------------------------------------------------------ requests (data plane)

    def request(self) -> RequestTimer:
        """Time one request; ``with stats.request(): ...`` counts success or failure on exit."""
        return RequestTimer(self)

    def succeeded(self, ns: int) -> None:
        """Count a request answered after ``ns`` nanoseconds in the core."""
        self._success_count += 1
        self._success_ns += ns

    def failed(self, ns: int) -> None:
        """Count a request that failed (bad input, queue full, deadline, error) after ``ns``."""
        self._fail_count += 1
        self._fail_ns += ns

    # ------------------------------------------------------------------ batches (batcher hook)

    def batch_done(self, size: int, queue_waits: list[float], compute_seconds: float) -> None:
        """Record one computed batch of ``size`` images holding ``len(queue_waits)`` requests.

        As in Triton, every request of the batch is charged the batch's whole compute time
        (so compute_infer.ns / compute_infer.count is the compute time a request sat through).
        """
        requests = len(queue_waits)
        compute_ns = int(compute_seconds * _NS)
        self._executions += 1
        self._images += size
        self._queue_count += requests
        self._queue_ns += int(sum(queue_waits) * _NS)
        self._compute_count += requests
        self._compute_ns += compute_ns * requests
        self._last_ms = time.time_ns() // 1_000_000
        batch = self._batches.get(size)
        if batch is None:
            self._batches[size] = [1, compute_ns]
        else:
            batch[0] += 1
            batch[1] += compute_ns

    def queue_depth(self, images: int) -> None:
        """Not part of Triton's statistics (the Prometheus gauge has it)."""

    def rejected(self, reason: str) -> None:
        """Refusals reach the caller as errors; :meth:`failed` counts them there, once."""

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> ModelStats:
        """The counters now, as the statistics extension reports them."""
        return ModelStats(
            name=self.model,
            version=self.version,
            last_inference_ms=self._last_ms,
            inference_count=self._images,
            execution_count=self._executions,
            success=DurationStat(self._success_count, self._success_ns),
            fail=DurationStat(self._fail_count, self._fail_ns),
            queue=DurationStat(self._queue_count, self._queue_ns),
            compute_infer=DurationStat(self._compute_count, self._compute_ns),
            batch_stats=tuple(
                BatchStat(size, DurationStat(count, ns))
                for size, (count, ns) in sorted(self._batches.items())
            ),
        )


class RequestTimer:
    """Context manager: success if the block returns, failure if it raises (or is cancelled)."""

    __slots__ = ("_start", "_stats")

    def __init__(self, stats: VersionStats) -> None:
        self._stats = stats
        self._start = 0

    def __enter__(self) -> RequestTimer:
        self._start = time.perf_counter_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ns = time.perf_counter_ns() - self._start
        if exc_type is None:
            self._stats.succeeded(ns)
        else:
            self._stats.failed(ns)


# ---------------------------------------------------------------------- worker processes
# With --workers N every worker counts its own requests; a statistics answer adds up all of
# them (serving/worker.py gathers the other workers' snapshots through the supervisor).


def _added(a: DurationStat, b: DurationStat) -> DurationStat:
    return DurationStat(a.count + b.count, a.ns + b.ns)


def merge_statistics(groups: Sequence[Sequence[ModelStats]]) -> list[ModelStats]:
    """One snapshot per model version, summed over ``groups`` (one group per worker).

    Versions keep the order of the first group they appear in; the last inference is the
    latest of any worker's.
    """
    merged: dict[tuple[str, str], ModelStats] = {}
    for group in groups:
        for stats in group:
            key = (stats.name, stats.version)
            seen = merged.get(key)
            if seen is None:
                merged[key] = stats
                continue
            batches: dict[int, DurationStat] = {
                b.batch_size: b.compute_infer for b in seen.batch_stats
            }
            for b in stats.batch_stats:
                batches[b.batch_size] = _added(
                    batches.get(b.batch_size, DurationStat()), b.compute_infer
                )
            merged[key] = ModelStats(
                name=seen.name,
                version=seen.version,
                last_inference_ms=max(seen.last_inference_ms, stats.last_inference_ms),
                inference_count=seen.inference_count + stats.inference_count,
                execution_count=seen.execution_count + stats.execution_count,
                success=_added(seen.success, stats.success),
                fail=_added(seen.fail, stats.fail),
                queue=_added(seen.queue, stats.queue),
                compute_infer=_added(seen.compute_infer, stats.compute_infer),
                batch_stats=tuple(BatchStat(size, d) for size, d in sorted(batches.items())),
            )
    return list(merged.values())


def stats_to_wire(stats: ModelStats) -> dict[str, Any]:
    """A snapshot as plain JSON values (for the supervisor's control channel)."""
    return dataclasses.asdict(stats)


def stats_from_wire(data: Mapping[str, Any]) -> ModelStats:
    """The inverse of :func:`stats_to_wire`."""

    def duration(d: Mapping[str, Any]) -> DurationStat:
        return DurationStat(int(d["count"]), int(d["ns"]))

    return ModelStats(
        name=str(data["name"]),
        version=str(data["version"]),
        last_inference_ms=int(data["last_inference_ms"]),
        inference_count=int(data["inference_count"]),
        execution_count=int(data["execution_count"]),
        success=duration(data["success"]),
        fail=duration(data["fail"]),
        queue=duration(data["queue"]),
        compute_infer=duration(data["compute_infer"]),
        batch_stats=tuple(
            BatchStat(int(b["batch_size"]), duration(b["compute_infer"]))
            for b in data["batch_stats"]
        ),
    )
