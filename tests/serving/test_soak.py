"""Bounded soak, excluded from the default run:

    .venv/bin/python -m pytest -m slow tests/serving/test_soak.py -s   # SOAK_SECONDS=300 default

Steady load for SOAK_SECONDS against a server process: no errors, resident memory
after warm-up grows by less than SOAK_RSS_GROWTH_MB, and the p99 latency of the last
minute stays within 2x of the first minute's.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.helpers.aio_load import drive
from tests.serving.test_main import start

SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
GROWTH_MB = float(os.environ.get("SOAK_RSS_GROWTH_MB", "50"))


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 120)
def test_soak(repo):
    with start(repo) as proc:
        proc.wait_ready()
        result = asyncio.run(drive(proc.grpc_address, proc.pid, 16, 4, SECONDS))
    window = min(60.0, SECONDS / 5)
    warm = [mb for t, mb in result.rss if window <= t < 2 * window]
    last = [mb for t, mb in result.rss if t >= SECONDS - window]
    first_p99 = result.p(99, since=window, until=2 * window)
    last_p99 = result.p(99, since=SECONDS - window)
    print(
        f"\nsoak {SECONDS:.0f}s: {dict(result.codes)}, {result.ok_rate:.0f} req/s; "
        f"rss after warm-up {min(warm):.0f} MB -> end {max(last):.0f} MB; "
        f"p99 {first_p99 * 1e3:.2f} ms -> {last_p99 * 1e3:.2f} ms"
    )
    assert set(result.codes) == {"OK"}
    assert max(last) - min(warm) < GROWTH_MB
    assert last_p99 < 2 * first_p99
