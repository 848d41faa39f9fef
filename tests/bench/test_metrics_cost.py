"""bench.metrics_cost times both ways of recording for every row it names."""

import asyncio

import bench.metrics_cost as metrics_cost


def test_every_row_is_measured(monkeypatch):
    monkeypatch.setattr(metrics_cost, "ROUNDS", 1)
    rows = asyncio.run(metrics_cost.measure(64))
    # Only that every row ran: speed is the benchmark's to report, never a unit test's.
    assert [row[0] for row in rows] == list(metrics_cost.CALLS_PER_ITERATION)
    assert all(direct > 0 and tallied > 0 for _, direct, tallied in rows)
