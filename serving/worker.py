"""One worker process under the supervisor: today's ServerApp plus its control channel.

The worker serves on the ports the supervisor reserved (SO_REUSEPORT), reports when it is
started and whether it is ready, applies every repository load/unload the supervisor relays,
and makes a load/unload it answered wait until every worker applied it. It drains and exits on
SIGTERM/SIGINT or when the supervisor's end of the channel closes (the supervisor died).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import socket
from typing import Any

from serving.app import ServerApp
from serving.control import ControlChannel, Message
from serving.errors import InvalidInput, ServingError, StoreUnavailable
from serving.settings import Settings
from serving.statistics import stats_from_wire, stats_to_wire
from serving.types import ModelStats

log = logging.getLogger(__name__)

# How long a load/unload RPC waits for the other workers before it answers anyway.
REPLICATION_TIMEOUT_S = 60.0
# How long a statistics answer waits for the other workers' counters.
STATISTICS_TIMEOUT_S = 5.0
# How long feedback waits for the other workers to say whether they hold its answer.
ANSWER_TIMEOUT_S = 5.0


class WorkerLink:
    """Ties a ServerApp to the supervisor: readiness out, repository changes both ways."""

    def __init__(self, app: ServerApp, channel: ControlChannel) -> None:
        self._app = app
        self._channel = channel
        self._refs = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._gathering: dict[int, asyncio.Future[list]] = {}
        self._reported: bool | None = None
        self._tasks: set[asyncio.Task] = set()
        # Not ready until the supervisor says every worker is.
        app.dataplane.set_peers_ready(False)
        app.dataplane.replicate_with(self._replicate)
        app.dataplane.gather_statistics_with(self._gather)
        app.dataplane.on_change(self._changed)
        app.feedback.look_up_peers_with(self._find_answer)

    def keep_unloaded(self, models: list[str]) -> None:
        """Before the first load: models unloaded by request stay unloaded here too."""
        for name in models:
            self._app.manager.registry.state(name).unloaded = True

    async def started(self) -> None:
        """Tell the supervisor this worker serves its ports (and whether it is ready)."""
        self._reported = self._app.dataplane.ready_here()
        await self._channel.send("started", ready=self._reported)

    def _changed(self) -> None:
        if self._reported is None:  # before started(): that message carries the state
            return
        ready = self._app.dataplane.ready_here()
        if ready != self._reported:
            self._reported = ready
            self._spawn(self._channel.send("ready", ready=ready))

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replicate(self, action: str, model: str) -> None:
        ref = next(self._refs)
        done = self._waiting[ref] = asyncio.get_running_loop().create_future()
        try:
            if not await self._channel.send("control", ref=ref, action=action, model=model):
                log.warning("supervisor gone: %s of %r not replicated", action, model)
                return
            await asyncio.wait_for(done, REPLICATION_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "%s of %r: not every worker confirmed within %.0fs",
                action,
                model,
                REPLICATION_TIMEOUT_S,
            )
        finally:
            self._waiting.pop(ref, None)

    async def _gather(self, name: str, version: str) -> list[list[ModelStats]]:
        """The other workers' statistics snapshots for ``name``/``version``, via the
        supervisor (which answers once every live worker did); none at all when that takes
        longer than STATISTICS_TIMEOUT_S, so the answer then counts this worker only."""
        ref = next(self._refs)
        parts = self._gathering[ref] = asyncio.get_running_loop().create_future()
        try:
            if not await self._channel.send("stats_request", ref=ref, model=name, version=version):
                return []
            groups = await asyncio.wait_for(parts, STATISTICS_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "statistics: the other workers did not answer within %.0fs; this "
                "answer counts this worker only",
                STATISTICS_TIMEOUT_S,
            )
            return []
        finally:
            self._gathering.pop(ref, None)
        return [[stats_from_wire(s) for s in group] for group in groups]

    async def _find_answer(self, request_id: str, index: int) -> dict[str, Any] | None:
        """The typed answer ``request_id`` as another worker holds it (see
        AnsweredImage.to_wire), or None when none does. Feedback may reach any worker: the
        kernel spreads connections, so the answer and its feedback often meet different
        processes."""
        ref = next(self._refs)
        parts = self._gathering[ref] = asyncio.get_running_loop().create_future()
        try:
            if not await self._channel.send(
                "answer_request", ref=ref, request_id=request_id, index=index
            ):
                return None
            found = await asyncio.wait_for(parts, ANSWER_TIMEOUT_S)
        except TimeoutError:
            raise StoreUnavailable(
                f"the other worker processes did not answer within {ANSWER_TIMEOUT_S:.0f}s; retry"
            ) from None
        finally:
            self._gathering.pop(ref, None)
        return next((part for part in found if part is not None), None)

    def _local_answer(self, request_id: str, index: int) -> dict[str, Any] | None:
        try:
            answer = self._app.feedback.local_answer(request_id, index)
        except InvalidInput as exc:
            return {"error": str(exc)}
        return None if answer is None else answer.to_wire()

    async def run(self, stop: asyncio.Event) -> None:
        """Handle supervisor messages until the channel closes, then ask the worker to stop."""
        while (message := await self._channel.receive()) is not None:
            await self._handle(message)
        if not stop.is_set():
            log.warning("supervisor gone; stopping")
            stop.set()

    async def _handle(self, message: Message) -> None:
        kind = message["type"]
        if kind == "peers":
            self._app.dataplane.set_peers_ready(message["ready"])
        elif kind == "apply":
            await self._apply(message["action"], message["model"])
            await self._channel.send("applied", id=message["id"])
        elif kind == "replicated":
            done = self._waiting.get(message["ref"])
            if done is not None and not done.done():
                done.set_result(None)
        elif kind == "stats_collect":
            try:
                own = self._app.dataplane.local_statistics(message["model"], message["version"])
            except ServingError:  # e.g. unloaded here a moment ago: nothing to add
                own = []
            await self._channel.send(
                "stats_part", id=message["id"], stats=[stats_to_wire(s) for s in own]
            )
        elif kind == "answer_collect":
            answer = self._local_answer(message["request_id"], message["index"])
            await self._channel.send("answer_part", id=message["id"], answer=answer)
        elif kind in ("stats_gathered", "answer_gathered"):
            parts = self._gathering.get(message["ref"])
            if parts is not None and not parts.done():
                parts.set_result(message["parts"])
        else:
            log.warning("unknown control message %r", kind)

    async def _apply(self, action: str, model: str) -> None:
        """Apply a load/unload some worker answered (this one included: that is idempotent, and
        applying every change in the supervisor's order makes all workers end the same)."""
        manager = self._app.manager
        try:
            if action == "load":
                await manager.sync(only=model, force=True)
            elif action == "policy":  # serving.json changed: read it again (shadow, promote)
                manager.policies.forget_override(model)
                await manager.sync(only=model)
            else:
                await manager.unload(model)
        except ServingError as exc:
            log.warning("relayed %s of %r: %s", action, model, exc)


async def serve_worker(settings: Settings, control_fd: int) -> None:
    """Run one worker until SIGTERM/SIGINT or until the supervisor goes away."""
    channel = await ControlChannel.open(socket.socket(fileno=control_fd))
    hello = await channel.receive()
    if hello is None:
        return
    app = ServerApp(settings)
    link = WorkerLink(app, channel)
    link.keep_unloaded(hello["unloaded"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    await link.started()
    listener = loop.create_task(link.run(stop), name="control")
    await stop.wait()
    log.info("worker %d stopping", hello["index"])
    await app.stop()
    listener.cancel()
    channel.close()
