"""The benchmark's /proc counters."""

import os

from bench.host import cpu_seconds, machine_busy_seconds


def test_cpu_seconds_grows_with_work():
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds(os.getpid()) > before


def test_machine_busy_seconds_grows_with_work():
    before = machine_busy_seconds()
    sum(i * i for i in range(2_000_000))
    assert machine_busy_seconds() > before
