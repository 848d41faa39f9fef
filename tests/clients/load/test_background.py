"""A load run on a background thread: stopped on request, every outcome kept."""

import time

import pytest

from clients.connection import ClientError, Endpoint
from clients.load import BackgroundLoad, LoadConfig


def test_runs_until_stopped_and_keeps_every_outcome(server):
    config = LoadConfig(
        Endpoint(server.address), "cnn", concurrency=3, batch=2, duration=60, warmup=0
    )
    load = BackgroundLoad(config).start()
    deadline = time.monotonic() + 20

    def wait_ok(n: int, since: float = 0.0) -> None:
        while load.count(since, ok=True) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    wait_ok(15)
    middle = time.perf_counter()
    wait_ok(15, since=middle)
    stopped_at = time.monotonic()
    result = load.stop()
    # stop() ends the 60 s run at once: only the requests in flight still finish.
    assert time.monotonic() - stopped_at < 5 and not load.running()
    outcomes = load.snapshot()
    assert len(outcomes) == result.requests + result.error_count >= 30
    assert all(o.ok and o.measured and o.finished >= o.started for o in outcomes)
    assert load.count(ok=False) == 0
    assert 0 < load.count(since=middle) < len(outcomes)


def test_a_failed_probe_is_raised_by_stop(server):
    load = BackgroundLoad(LoadConfig(Endpoint(server.address), "nope", duration=5)).start()
    with pytest.raises(ClientError, match="NOT_FOUND"):
        load.stop()
