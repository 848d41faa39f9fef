"""serving/tally.py: updates written in bulk give exactly the series direct updates give."""

from __future__ import annotations

import asyncio
import math
import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from serving.quality import CONFIDENCE_BUCKETS
from serving.tally import Tally, TallyFlush
from tests.serving.test_quality import samples

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def _series(registry: CollectorRegistry) -> tuple[Counter, Gauge, Histogram]:
    return (
        Counter("calls", "c", ["k"], registry=registry),
        Gauge("depth", "g", registry=registry),
        Histogram("seconds", "h", ["k"], buckets=BUCKETS, registry=registry),
    )


def _tallied(label: str) -> tuple:
    """A registry with a flushing tally, its three series and tally handles on them."""
    registry = CollectorRegistry()
    tally = Tally()
    registry.register(TallyFlush(tally))
    counter, gauge, hist = _series(registry)
    handles = (
        tally.counter(counter.labels(label)),
        tally.gauge(gauge),
        tally.histogram(hist.labels(label)),
    )
    return registry, (counter, gauge, hist), handles


VALUES = [0.0005, 0.001, 0.0010001, 0.05, 0.1, 0.7, 1.0, 3.0, 0.002, 0.002]


def test_bulk_updates_equal_direct_ones_outside_a_loop() -> None:
    direct, bulk = CollectorRegistry(), CollectorRegistry()
    tally = Tally()
    bulk.register(TallyFlush(tally))
    d_counter, d_gauge, d_hist = _series(direct)
    b_counter, b_gauge, b_hist = _series(bulk)
    t_counter = tally.counter(b_counter.labels("a"))
    t_gauge = tally.gauge(b_gauge)
    t_hist = tally.histogram(b_hist.labels("a"))
    for value in VALUES:
        d_counter.labels("a").inc(value)
        t_counter.inc(value)
        d_hist.labels("a").observe(value)
        t_hist.observe(value)
        d_gauge.inc(2)
        t_gauge.inc(2)
    d_gauge.dec(3)
    t_gauge.dec(3)
    assert samples(bulk) == pytest.approx(samples(direct))


def test_updates_on_a_loop_are_written_by_the_next_iteration_or_any_read() -> None:
    registry, (counter, gauge, _), (t_counter, t_gauge, t_hist) = _tallied("x")

    async def scenario() -> None:
        t_counter.inc()
        t_hist.observe(0.05)
        t_gauge.set(7)
        # Not yet written to the series: the write waits for the end of this iteration ...
        assert counter.labels("x")._value.get() == 0
        # ... but a read of the registry writes first.
        assert registry.get_sample_value("calls_total", {"k": "x"}) == 1
        t_counter.inc(2)
        t_gauge.set(3)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert counter.labels("x")._value.get() == 3
        assert gauge._value.get() == 3
        assert registry.get_sample_value("seconds_bucket", {"k": "x", "le": "0.1"}) == 1
        assert registry.get_sample_value("seconds_count", {"k": "x"}) == 1

    asyncio.run(scenario())


def test_a_nan_observation_goes_to_the_sum_and_no_bucket_as_observe_does() -> None:
    registry = CollectorRegistry()
    tally = Tally()
    registry.register(TallyFlush(tally))
    _, _, hist = _series(registry)
    tally.histogram(hist.labels("n")).observe(float("nan"))
    assert registry.get_sample_value("seconds_count", {"k": "n"}) == 0
    assert math.isnan(registry.get_sample_value("seconds_sum", {"k": "n"}))


def test_counters_refuse_negative_amounts() -> None:
    registry = CollectorRegistry()
    counter, _, _ = _series(registry)
    with pytest.raises(ValueError):
        Tally().counter(counter.labels("a")).inc(-1)


def test_no_update_is_lost_while_another_thread_keeps_reading() -> None:
    """A scrape thread flushing while the loop adds: every increment lands exactly once."""
    registry, _, (t_counter, t_gauge, _) = _tallied("c")
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            registry.get_sample_value("calls_total", {"k": "c"})

    reader = threading.Thread(target=scrape)
    reader.start()

    async def record() -> None:
        for round_ in range(200):
            for _ in range(50):
                t_counter.inc()
                t_gauge.inc()
            t_gauge.dec(50)
            if round_ % 10 == 0:
                await asyncio.sleep(0)

    try:
        asyncio.run(record())
    finally:
        stop.set()
        reader.join()
    assert registry.get_sample_value("calls_total", {"k": "c"}) == 200 * 50
    assert registry.get_sample_value("depth") == 0


def test_a_loop_closed_before_its_write_does_not_stop_later_writes() -> None:
    _, (counter, gauge, _), (t_counter, t_gauge, _) = _tallied("z")
    loop = asyncio.new_event_loop()

    def count() -> None:
        t_counter.inc()  # schedules the write for this loop's next iteration ...
        loop.stop()  # ... which never comes

    loop.call_soon(count)
    loop.run_forever()
    loop.close()
    assert counter.labels("z")._value.get() == 0

    async def later() -> None:
        t_gauge.inc()  # a new loop writes everything pending at the end of its iteration
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(later())
    assert (counter.labels("z")._value.get(), gauge._value.get()) == (1, 1)


def test_observe_many_through_the_tally_equals_one_observe_per_value() -> None:
    """The bulk path (64-image answers) counts like one observe() per value, NaN included."""
    values = np.concatenate(
        [np.asarray(CONFIDENCE_BUCKETS), np.random.default_rng(1).random(300), [0.0, 1.5]]
    ).astype(np.float32)
    bulk_registry, plain_registry = CollectorRegistry(), CollectorRegistry()
    tally = Tally()
    bulk = Histogram("c", "c", buckets=CONFIDENCE_BUCKETS, registry=bulk_registry)
    plain = Histogram("c", "c", buckets=CONFIDENCE_BUCKETS, registry=plain_registry)
    tally.histogram(bulk).observe_many(values)
    tally.flush()
    for value in values.tolist():
        plain.observe(value)
    got, expected = samples(bulk_registry), samples(plain_registry)
    assert abs(got.pop(("c_sum", ())) - expected.pop(("c_sum", ()))) < 1e-3
    assert got == expected
    nan = Histogram("n", "n", buckets=CONFIDENCE_BUCKETS, registry=CollectorRegistry())
    tally.histogram(nan).observe_many(np.array([0.5, np.nan], dtype=np.float32))
    tally.flush()
    assert nan._buckets[2].get() == 1 and sum(b.get() for b in nan._buckets) == 1
