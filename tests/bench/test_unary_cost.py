"""bench.unary_cost runs every step it names against the shipped models."""

import asyncio

import bench.unary_cost as unary_cost


def test_every_step_is_measured(monkeypatch):
    monkeypatch.setattr(unary_cost, "ROUNDS", 1)
    monkeypatch.setattr(unary_cost, "CALLS", 3)
    steps = dict(asyncio.run(unary_cost.measure("mlp100")))
    # Only that every step ran: speed is the benchmark's to report, never a unit test's.
    assert len(steps) == 8 + len(unary_cost.IN_FLIGHT) and all(v > 0 for v in steps.values())
