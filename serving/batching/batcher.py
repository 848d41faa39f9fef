"""Per-model dynamic batcher: a bounded queue, a batch timer, one future per request.

A batch is cut when it holds ``max_batch_size`` images or when its oldest
request has waited ``max_queue_delay``, whichever comes first. While a batch
computes (in an executor thread, never on the event loop) the next one keeps
growing, so under load batches fill up without any extra waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from serving.batching.compute import ComputePool
from serving.batching.merge import merge, split
from serving.errors import DeadlineExceeded, ModelNotReady, Overloaded

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# Called on the event loop with a computed batch's requests and their output rows, after the
# rows were handed to the requests (serving/shadow/ runs a candidate version on them).
AfterBatch = Callable[[list["Pending"], list[np.ndarray]], None]

# Batches of one model in flight beyond its instances: one full batch waiting right behind
# the computing ones in the compute queue (instances + PIPELINE_EXTRA in all).
PIPELINE_EXTRA = 1
# See Batcher._busy: one in this many inline-eligible idle requests computes on the thread.
INLINE_PROBE = 16


class BatchObserver(Protocol):
    """What the batcher reports; the metrics layer implements it."""

    def batch_done(self, size: int, queue_waits: list[float], compute_seconds: float) -> None: ...

    def queue_depth(self, images: int) -> None: ...

    def rejected(self, reason: str) -> None: ...


class FanOut:
    """Sends every report to several observers (Prometheus series, Triton statistics)."""

    __slots__ = ("_observers",)

    def __init__(self, *observers: BatchObserver) -> None:
        self._observers = observers

    def batch_done(self, size: int, queue_waits: list[float], compute_seconds: float) -> None:
        """Forward one computed batch."""
        for observer in self._observers:
            observer.batch_done(size, queue_waits, compute_seconds)

    def queue_depth(self, images: int) -> None:
        """Forward the queue depth."""
        for observer in self._observers:
            observer.queue_depth(images)

    def rejected(self, reason: str) -> None:
        """Forward a refusal."""
        for observer in self._observers:
            observer.rejected(reason)


class _NullObserver:
    def batch_done(self, size: int, queue_waits: list[float], compute_seconds: float) -> None:
        pass

    def queue_depth(self, images: int) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass


@dataclass(slots=True, eq=False)
class Pending:
    """One queued request."""

    images: np.ndarray
    future: asyncio.Future
    enqueued: float
    deadline: float | None
    queued: bool = field(default=True)
    # The submitter's word for what follows the batch (see AfterBatch); None: nothing.
    tag: object = None

    @property
    def count(self) -> int:
        """Images in this request."""
        return self.images.shape[0]


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """When to cut a batch and how much may wait."""

    max_batch_size: int
    max_queue_delay_s: float
    max_queue_images: int
    # An idle request whose model recently computed faster than this runs on the event loop
    # itself: the hand-off to a compute thread and back costs more than such a model.
    max_inline_compute_s: float = 0.0


def plan_batch(
    queue: deque[Pending], queued_images: int, now: float, limits: BatchLimits, flush: bool
) -> tuple[list[Pending] | None, float]:
    """Decide whether to cut a batch now.

    Returns ``(batch, 0)`` when one is due, else ``(None, seconds_to_wait)``.
    Pure apart from popping the requests it takes (and dead ones) off ``queue``;
    expired requests are taken too and left to the caller to fail.
    """
    while queue and not queue[0].queued:
        queue.popleft()
    if not queue:
        return None, limits.max_queue_delay_s
    due = queue[0].enqueued + limits.max_queue_delay_s
    if not flush and queued_images < limits.max_batch_size and now < due:
        return None, due - now
    batch: list[Pending] = []
    images = 0
    while queue:
        item = queue[0]
        if not item.queued:
            queue.popleft()
            continue
        # A request larger than max_batch_size still runs, alone.
        if batch and images + item.count > limits.max_batch_size:
            break
        queue.popleft()
        batch.append(item)
        images += item.count
    return batch, 0.0


class Batcher:
    """Queue of one model version; :meth:`submit` returns exactly that request's rows."""

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        limits: BatchLimits,
        compute: ComputePool,
        *,
        name: str = "model",
        observer: BatchObserver | None = None,
        clock: Clock = time.monotonic,
        instances: int = 1,
    ) -> None:
        self._run = run
        # Batches that may compute at once: each runs on its own model instance.
        self.instances = instances
        self.limits = limits
        self._compute = compute
        self._name = name
        self._observer = observer or _NullObserver()
        self._clock = clock
        self._queue: deque[Pending] = deque()
        self._queued_images = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        # Requests computing on the idle fast path (see submit); they count as running.
        self._direct = 0
        # Recent compute time of lone requests (rises at once, decays slowly): inline or thread.
        self._recent_compute_s = 0.0
        # Whether requests queued while the last batch computed on a thread. An inline run
        # blocks the loop, so under load the next request always finds the model idle and
        # batches never form; so once requests are seen waiting, idle ones go to the thread
        # too, until a thread run finds nobody waiting. Every INLINE_PROBE-th inline-eligible
        # request goes to the thread anyway, to notice load arriving.
        self._busy = False
        self._inline_runs = 0
        # With a batch delay the first request waits for company on purpose.
        self._idle_fast_path = limits.max_queue_delay_s == 0
        # Set and cleared by the repository on the event loop (the shadow version's hook).
        self.after_batch: AfterBatch | None = None

    @property
    def queued_images(self) -> int:
        """Images waiting (not yet in a running batch)."""
        return self._queued_images

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"batcher:{self._name}"
            )

    async def submit(
        self, images: np.ndarray, deadline: float | None = None, tag: object = None
    ) -> np.ndarray:
        """Queue ``images`` ([N, ...]) and wait for their output rows.

        ``deadline`` is on this batcher's monotonic clock. Raises Overloaded
        when the queue is full, DeadlineExceeded when the deadline passes
        before the batch is cut, ModelNotReady when the batcher is closing.
        """
        if self._closing:
            raise ModelNotReady(f"{self._name} is being unloaded; retry")
        count = images.shape[0]
        if self._queued_images + count > self.limits.max_queue_images:
            self._observer.rejected("queue_full")
            raise Overloaded(
                f"{self._name}: queue full ({self._queued_images} images waiting, limit "
                f"{self.limits.max_queue_images}); retry with backoff"
            )
        now = self._clock()
        if deadline is not None and deadline <= now:
            self._observer.rejected("deadline")
            raise DeadlineExceeded(f"{self._name}: deadline passed before the request was queued")
        future = asyncio.get_running_loop().create_future()
        if self._idle_fast_path and not self._queue and not self._running and not self._direct:
            # Idle and no batch delay asked for: nothing to batch with, so skip the queue, the
            # batching loop's wake-up and its coalescing pass and hand the request straight to
            # a compute thread. Requests arriving meanwhile queue up and form the next batch.
            return await self._run_alone(
                Pending(images, future, now, deadline, queued=False, tag=tag)
            )
        item = Pending(images, future, now, deadline, tag=tag)
        self._queue.append(item)
        self._queued_images += count
        self._observer.queue_depth(self._queued_images)
        self._wakeup.set()
        try:
            return await future
        except asyncio.CancelledError:
            # A cancelled caller frees its queue slot at once instead of at batch time.
            self._forget(item)
            self._observer.queue_depth(self._queued_images)
            raise

    async def _run_alone(self, item: Pending) -> np.ndarray:
        self._direct += 1
        try:
            if self._inline_now():
                # Blocks the loop for less than the thread hand-off would cost; nothing
                # else is queued for this model, and the estimate keeps slow models off it.
                computed, pieces, start, seconds = self._compute_batch([item])
            else:
                computed, pieces, start, seconds = await self._compute.run(
                    self._compute_batch, [item]
                )
                self._busy = bool(self._queue)
            # Up at once, down slowly: one slow run is enough to leave the loop alone.
            recent = self._recent_compute_s
            self._recent_compute_s = seconds if seconds > recent else 0.8 * recent + 0.2 * seconds
        except Exception:
            log.exception("%s: batch of 1 request failed", self._name)
            raise
        finally:
            self._direct -= 1
            if self._queue or self._closing:
                # Requests that queued meanwhile may go now (or close() waits for this one).
                # Otherwise the batching loop has nothing to do: waking it would cost a task
                # step per request on an idle model.
                self._wakeup.set()
        if not computed:
            self._observer.rejected("deadline")
            raise DeadlineExceeded(f"{self._name}: deadline passed while queued; not computed")
        self._observer.batch_done(item.count, [start - item.enqueued], seconds)
        if self.after_batch is not None:
            self.after_batch([item], pieces)
        return pieces[0]

    def _inline_now(self) -> bool:
        if self._busy or self._recent_compute_s >= self.limits.max_inline_compute_s:
            return False
        self._inline_runs += 1
        return self._inline_runs % INLINE_PROBE != 0

    def _forget(self, item: Pending) -> None:
        # Callers report the new queue depth: once per batch, not once per request.
        if item.queued:
            item.queued = False
            self._queued_images -= item.count

    async def _loop(self) -> None:
        coalesced = False
        while True:
            running = len(self._running) + self._direct
            full = self._queued_images >= self.limits.max_batch_size
            if running >= self.instances + PIPELINE_EXTRA or (running and not full):
                # A batch computes: let the next one keep growing. Only a full batch is
                # handed over early: to a free instance, which computes it beside the
                # running one (batch 64 keeps every core busy), or, all instances busy,
                # into the compute queue, so a thread starts it the moment an instance
                # frees instead of waiting for a round trip through the event loop.
                # Partial batches wait: starting them on a second instance would cut
                # batch-1 traffic into batches of one, each paying a batch's overhead.
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if not coalesced and self._queue and not full:
                # One pass of the event loop lets handlers whose requests already
                # arrived enqueue them, so they join this batch instead of the next
                # one: bigger batches at the cost of one loop iteration, no timer.
                coalesced = True
                await asyncio.sleep(0)
                continue
            batch, wait = plan_batch(
                self._queue, self._queued_images, self._clock(), self.limits, self._closing
            )
            if batch is None:
                if self._closing and not self._queue:
                    if self._running:
                        await asyncio.gather(*self._running, return_exceptions=True)
                    return
                self._wakeup.clear()
                if self._queue:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), wait)
                else:
                    await self._wakeup.wait()
                continue
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._batch_finished)
            coalesced = False

    def _batch_finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._wakeup.set()

    async def _execute(self, batch: list[Pending]) -> None:
        live: list[Pending] = []
        for item in batch:
            self._forget(item)
            if not item.future.done():
                live.append(item)
        self._observer.queue_depth(self._queued_images)
        if not live:
            return
        try:
            computed, pieces, start, seconds = await self._compute.run(self._compute_batch, live)
            self._busy = len(live) > 1 or bool(self._queue)
        except Exception as exc:  # fan the failure out to exactly this batch's requests
            log.exception("%s: batch of %d requests failed", self._name, len(live))
            for item in live:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, piece in zip(computed, pieces, strict=True):
            if not item.future.done():
                item.future.set_result(piece)
        if len(computed) < len(live):
            done = set(computed)
            for item in live:
                if item not in done and not item.future.done():
                    self._observer.rejected("deadline")
                    item.future.set_exception(
                        DeadlineExceeded(
                            f"{self._name}: deadline passed while queued; not computed"
                        )
                    )
        if computed:
            images = sum(item.count for item in computed)
            self._observer.batch_done(images, [start - item.enqueued for item in computed], seconds)
            if self.after_batch is not None:
                self.after_batch(computed, pieces)

    def _compute_batch(
        self, live: list[Pending]
    ) -> tuple[list[Pending], list[np.ndarray], float, float]:
        """On the compute thread: drop what expired while waiting, merge, run, split.

        Deadlines are checked here, at the last moment before compute, because a
        full batch may wait in the compute queue behind the one running.
        """
        start = self._clock()
        keep = [item for item in live if item.deadline is None or item.deadline > start]
        if not keep:
            return keep, [], start, 0.0
        merged, ends = merge([item.images for item in keep])
        outputs = self._run(merged)
        return keep, split(outputs, ends), start, self._clock() - start

    async def close(self) -> None:
        """Stop taking requests, finish everything queued, then end the loop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        while self._direct:  # the version's session must outlive its last request
            self._wakeup.clear()
            await self._wakeup.wait()
