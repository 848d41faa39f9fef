"""The supervisor's relay of repository changes, on fake channels: one order for everyone,
the origin answered once all applied, a dead worker never waited for."""

from __future__ import annotations

import asyncio
from typing import Any

from serving.settings import Settings
from serving.supervisor import Supervisor


class FakeChannel:
    """Records what the supervisor sends to one worker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, kind: str, **fields: Any) -> bool:
        self.sent.append((kind, fields))
        return True

    def applied(self) -> list[tuple[str, str]]:
        return [(f["action"], f["model"]) for kind, f in self.sent if kind == "apply"]

    def replicated(self) -> list[int]:
        return [f["ref"] for kind, f in self.sent if kind == "replicated"]


def supervisor_with(workers: int) -> tuple[Supervisor, list[FakeChannel]]:
    supervisor = Supervisor(Settings(metrics_port=-1), workers)
    channels = [FakeChannel() for _ in range(workers)]
    for slot, channel in zip(supervisor.slots, channels, strict=True):
        slot.channel = channel  # type: ignore[assignment]
    return supervisor, channels


def control(ref: int, action: str, model: str) -> dict[str, Any]:
    return {"type": "control", "ref": ref, "action": action, "model": model}


def test_conflicting_changes_reach_everyone_in_one_order() -> None:
    async def scenario() -> None:
        supervisor, (a, b) = supervisor_with(2)
        first, second = supervisor.slots
        await supervisor._handle(first, control(1, "unload", "m"))
        await supervisor._handle(second, control(7, "load", "m"))
        # Both workers, the origins included, apply both changes in the supervisor's order.
        assert a.applied() == b.applied() == [("unload", "m"), ("load", "m")]
        assert supervisor._unloaded == set()
        await supervisor._handle(first, {"type": "applied", "id": 1})
        assert a.replicated() == []  # the other worker has not applied it yet
        await supervisor._handle(second, {"type": "applied", "id": 1})
        assert a.replicated() == [1] and b.replicated() == []
        await supervisor._handle(second, {"type": "applied", "id": 2})
        await supervisor._handle(first, {"type": "applied", "id": 2})
        assert b.replicated() == [7]
        supervisor._close()

    asyncio.run(scenario())


def test_a_dead_worker_is_not_waited_for_and_restarts_see_the_unloads() -> None:
    async def scenario() -> None:
        supervisor, (a, _b) = supervisor_with(2)
        first, second = supervisor.slots
        await supervisor._handle(first, control(3, "unload", "m"))
        await supervisor._handle(first, {"type": "applied", "id": 1})
        second.channel = None
        supervisor._gone(second)
        await asyncio.sleep(0)  # the follow-up runs on the loop
        await asyncio.sleep(0)
        assert a.replicated() == [3]
        assert supervisor._unloaded == {"m"}  # what a restarted worker's hello carries
        supervisor._close()

    asyncio.run(scenario())
