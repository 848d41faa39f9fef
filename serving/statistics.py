"""Per-version inference statistics, counted the way Triton's statistics extension counts them.

One :class:`VersionStats` per loaded model version, cumulative since it was loaded (a reload
starts from zero, as in Triton). Every update runs on the event loop thread: the data plane
counts each request's outcome and the batcher reports each computed batch through its observer
hook, which it calls on the loop after the compute thread hands the batch back. So the counters
are plain ints with no lock, and a reader on the loop always sees a consistent snapshot.
"""

from __future__ import annotations

import time
from types import TracebackType

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
