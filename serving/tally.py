"""Metric updates made on the event loop, written to their Prometheus series in bulk.

A prometheus_client update costs a few Python calls and a lock per value (a histogram
observation: a bucket scan in Python and two locked increments). The serving loop makes about
ten of them per request (in-flight gauge, request counter and latency, queue wait, answer
confidence, label count, queue depth), which under load is a measurable share of a call. A
:class:`Tally` handle instead adds to a plain float; the loop writes every changed handle's
difference to its series once per loop iteration (one callback scheduled by the first change),
and any reader of the registry flushes first (:class:`TallyFlush`, registered on it before the
series), so scrapes and ``get_sample_value`` always see every update made so far: the counts
stay exact, only their writes are batched.

Handles are updated on the event-loop thread only (where all the serving code that records runs);
flushing is safe from any thread: the loop only adds to a handle's running total and queues a
changed handle once (an atomic deque append), and a flush (serialised by a lock among flushers)
writes what each queued total gained since that handle's last flush. A loop stopped before the
end of its iteration leaves its last updates to the next write: a read of the registry, the
next loop's first update, or ``Metrics.close()`` when the server stops.
"""

from __future__ import annotations

import asyncio
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
from prometheus_client.registry import Collector


class _Slot:
    """One Prometheus value (a counter's, a gauge's, a histogram bucket's or sum's)."""

    __slots__ = ("dirty", "flushed", "replace", "total", "value")

    def __init__(self, value: Any, replace: bool = False) -> None:
        self.value = value  # prometheus_client's value object (in memory or file-backed)
        self.total = 0.0  # what the loop added since the start (or the last set, replace=True)
        self.flushed = 0.0
        self.dirty = False
        self.replace = replace


class Tally:
    """The pending updates of one registry's series; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirty: deque[_Slot] = deque()
        # The loop that will write the pending updates at the end of its iteration, if any.
        self._scheduled_on: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ handles

    def counter(self, child: Any) -> TallyCounter:
        """A handle on a Counter (or one of its labelled children)."""
        return TallyCounter(self, _Slot(child._value))

    def gauge(self, child: Any) -> TallyGauge:
        """A handle on a Gauge (or one of its labelled children)."""
        return TallyGauge(self, _Slot(child._value), _Slot(child._value, replace=True))

    def histogram(self, child: Any) -> TallyHistogram:
        """A handle on a Histogram child (its buckets and sum)."""
        return TallyHistogram(
            self, child._upper_bounds, [_Slot(b) for b in child._buckets], _Slot(child._sum)
        )

    # ------------------------------------------------------------------ recording

    def add(self, slot: _Slot, amount: float) -> None:
        """Add ``amount`` to ``slot`` (event-loop thread)."""
        slot.total += amount
        if not slot.dirty:
            self._mark(slot)

    def put(self, slot: _Slot, value: float) -> None:
        """Set ``slot`` to ``value`` (event-loop thread)."""
        slot.total = value
        if not slot.dirty:
            self._mark(slot)

    def _mark(self, slot: _Slot) -> None:
        # deque.append and popleft are atomic: no lock on the loop's side.
        slot.dirty = True
        self._dirty.append(slot)
        scheduled = self._scheduled_on
        if scheduled is None or scheduled.is_closed():  # (a loop closed before it wrote)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # recorded outside a loop (a test, a tool): write it now
                self.flush()
                return
            self._scheduled_on = loop
            loop.call_soon(self._flush_on_loop)

    # ------------------------------------------------------------------ writing

    def _flush_on_loop(self) -> None:
        self._scheduled_on = None
        self.flush()

    def flush(self) -> None:
        """Write every pending update to its series (any thread)."""
        dirty = self._dirty
        with self._lock:  # one flusher at a time: each slot's flushed total is theirs
            while dirty:
                try:
                    slot = dirty.popleft()
                except IndexError:
                    break
                # Clear the mark before reading the total: an add after this read marks the
                # slot again, so nothing added is ever left unwritten.
                slot.dirty = False
                total = slot.total
                if slot.replace:
                    slot.value.set(total)
                elif total != slot.flushed:
                    slot.value.inc(total - slot.flushed)
                    slot.flushed = total


class TallyCounter:
    """``inc`` like a Counter child's, written in bulk."""

    __slots__ = ("_slot", "_tally")

    def __init__(self, tally: Tally, slot: _Slot) -> None:
        self._tally = tally
        self._slot = slot

    def inc(self, amount: float = 1.0) -> None:
        """Count ``amount`` (>= 0)."""
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self._tally.add(self._slot, amount)


class TallyGauge:
    """``inc``/``dec``/``set`` like a Gauge child's, written in bulk."""

    __slots__ = ("_added", "_set", "_tally")

    def __init__(self, tally: Tally, added: _Slot, set_: _Slot) -> None:
        self._tally = tally
        self._added = added
        self._set = set_

    def inc(self, amount: float = 1.0) -> None:
        """Raise the gauge by ``amount``."""
        self._tally.add(self._added, amount)

    def dec(self, amount: float = 1.0) -> None:
        """Lower the gauge by ``amount``."""
        self._tally.add(self._added, -amount)

    def set(self, value: float) -> None:
        """Set the gauge (use either set or inc/dec on one gauge, not both)."""
        self._tally.put(self._set, value)


class TallyHistogram:
    """``observe`` like a Histogram child's (same buckets: the first bound >= the value)."""

    __slots__ = ("_array_bounds", "_bounds", "_buckets", "_sum", "_tally")

    def __init__(
        self, tally: Tally, bounds: list[float], buckets: list[_Slot], sum_: _Slot
    ) -> None:
        self._tally = tally
        self._bounds = bounds  # bisect on a list beats numpy for one value
        self._array_bounds = np.asarray(bounds)
        self._buckets = buckets
        self._sum = sum_

    def observe(self, amount: float) -> None:
        """Record one observation."""
        tally = self._tally
        if amount == amount:  # NaN lands in no bucket (only the sum), as with observe()
            tally.add(self._buckets[bisect_left(self._bounds, amount)], 1.0)
        tally.add(self._sum, amount)

    def observe_all(self, amounts: Iterable[float]) -> None:
        """Record each of ``amounts``."""
        for amount in amounts:
            self.observe(amount)

    def observe_many(self, values: np.ndarray) -> None:
        """Record each of ``values`` (a float array) with a few numpy calls: one add per
        non-empty bucket, not one Python call per value."""
        tally = self._tally
        buckets = self._buckets
        counts = bucket_counts(self._array_bounds, values)
        for index in np.flatnonzero(counts).tolist():
            tally.add(buckets[index], int(counts[index]))
        tally.add(self._sum, float(values.sum()))


def bucket_counts(bounds: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many of ``values`` fall in each histogram bucket (``bounds``: the upper bounds,
    ending in +Inf), as one ``observe`` per value would count them: the first bound >= the
    value; NaN in none."""
    slots = np.searchsorted(bounds, values, side="left")
    return np.bincount(slots, minlength=len(bounds))[: len(bounds)]


class TallyFlush(Collector):
    """Registered on a registry before its series: every collect writes pending updates first."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally

    def describe(self) -> list:
        """No series of its own."""
        return []

    def collect(self) -> list:
        """Flush, then nothing to report."""
        self._tally.flush()
        return []
