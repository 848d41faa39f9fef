"""``--workers N``: a small supervisor running N worker processes that share the ports.

The supervisor never imports grpc or onnxruntime and never forks a process that did: each
worker is a fresh ``python -m serving`` (the same ServerApp as one process runs), handed its
settings in its environment and one end of a private control socket. The supervisor

- reserves every port first (SO_REUSEPORT, :mod:`serving.sockets`), so port 0 works and the
  kernel spreads connections over the workers' own listening sockets;
- prints the one ready line once every worker serves, with its own pid;
- serves one /metrics for all workers (prometheus_client's multiprocess mode);
- restarts a worker that died, with exponential backoff, logged and counted;
- tells every worker whether all workers are ready (health means all of them), and relays
  each repository load/unload one worker answered to every worker, in one order;
- relays a worker's lookup of a typed answer it does not hold (feedback by request id) to
  the other workers;
- forwards SIGTERM/SIGINT so every worker drains, and exits 0 after a clean drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving import event_loop
from serving.control import ControlChannel, Message
from serving.metrics import MULTIPROC_DIR_ENV, MetricsEndpoint, SupervisorMetrics
from serving.settings import Settings, env_name, settings_environ
from serving.shadow.flags import ShadowFlags
from serving.sockets import port_of, reserve

log = logging.getLogger(__name__)

WORKER_FLAG = "--worker-control-fd"
# (host field, port field) of every port the workers share.
SHARED_PORTS = (("grpc_host", "grpc_port"), ("http_host", "http_port"))
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 30.0
# A worker that served this long before it died starts the backoff again from the first step.
STABLE_AFTER_S = 30.0
# Beyond the grace period, how long a draining worker may take to close before SIGKILL.
EXIT_MARGIN_S = 10.0

Announce = Callable[[dict[str, int], int], None]


@dataclass
class WorkerSlot:
    """One of the N worker positions; its process changes when it is restarted."""

    index: int
    process: asyncio.subprocess.Process | None = None
    channel: ControlChannel | None = None
    started: bool = False
    ready: bool = False
    restarts: int = 0
    failures_in_a_row: int = 0
    serving_since: float | None = None

    @property
    def pid(self) -> int:
        """The current process id (0 when none runs)."""
        return self.process.pid if self.process is not None else 0


@dataclass
class Replication:
    """A load/unload being applied by every worker; its origin waits for all of them."""

    origin: int
    ref: int
    waiting: set[int] = field(default_factory=set)


@dataclass
class Gathering(Replication):
    """A statistics request (or an answer lookup for feedback): its origin waits for the
    other workers' parts, sent back as ``reply``."""

    parts: list[Any] = field(default_factory=list)
    reply: str = "stats_gathered"


class Supervisor:
    """Runs the workers; :meth:`run` returns the process exit code."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.slots = [WorkerSlot(i) for i in range(workers)]
        self._sockets: dict[str, socket.socket] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="digits-metrics-"))
        self.metrics = SupervisorMetrics(self._dir, workers)
        self._endpoint = MetricsEndpoint()
        self._stopping = asyncio.Event()
        self._all_started = asyncio.Event()
        self._start_failure: int | None = None
        self._peers_ready = False
        self._unloaded: set[str] = set()
        # The --shadow overrides still in force in the workers, for a restarted one.
        self._shadow = ShadowFlags(settings.model_repository, settings.shadow)
        self._replications: dict[int, Replication] = {}
        self._gatherings: dict[int, Gathering] = {}
        self._next_id = 0
        self._env: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle

    async def run(self, announce: Announce) -> int:
        """Reserve ports, start every worker, announce, serve until a signal, drain."""
        try:
            ports = self._reserve()
            metrics_port = self._serve_metrics()
        except OSError as exc:
            log.error("cannot start: %s", exc.strerror or exc)
            self._close()
            return 4
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        worker_settings = self.settings.replace(
            metrics_port=-1, workers=str(len(self.slots)), **ports
        )
        self._env = {**os.environ, **settings_environ(worker_settings)}
        self._shadow.start()
        self._env.pop(MULTIPROC_DIR_ENV, None)
        if metrics_port >= 0:  # without a /metrics, workers keep their metrics in memory
            self._env[MULTIPROC_DIR_ENV] = str(self._dir)
        tasks = [loop.create_task(self._keep_running(slot)) for slot in self.slots]
        try:
            if await self._first_start():
                announce(ports, metrics_port)
                pids = [w.pid for w in self.slots]
                log.info("%d workers serving: pids %s", len(self.slots), pids)
                await self._stopping.wait()
            return await self._drain(tasks)
        finally:
            self._close()

    def _serve_metrics(self) -> int:
        s = self.settings
        if s.metrics_port < 0:
            return -1
        port = self._endpoint.start(self.metrics.registry, s.metrics_host, s.metrics_port)
        log.info("metrics for all workers on http://%s:%d/metrics", s.metrics_host, port)
        return port

    def _close(self) -> None:
        self._endpoint.close()
        for sock in self._sockets.values():
            sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _reserve(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for host_field, port_field in SHARED_PORTS:
            host, port = getattr(self.settings, host_field), getattr(self.settings, port_field)
            if port < 0:  # a transport switched off
                continue
            what = {"grpc_port": "gRPC", "http_port": "HTTP"}.get(port_field, port_field)
            flag = "--" + port_field.replace("_", "-")
            sock = self._sockets[port_field] = reserve(host, port, what, flag)
            ports[port_field] = port_of(sock)
        return ports

    async def _first_start(self) -> bool:
        """Wait until every worker started; False when one failed first or a signal came."""
        started = asyncio.ensure_future(self._all_started.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait((started, stopping), return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        stopping.cancel()
        return self._all_started.is_set() and not self._stopping.is_set()

    async def _drain(self, tasks: list[asyncio.Task]) -> int:
        self._stopping.set()
        log.info("stopping %d workers (grace %.1fs)", len(self.slots), self.settings.grace_seconds)
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                slot.process.send_signal(signal.SIGTERM)
        _done, late = await asyncio.wait(tasks, timeout=self.settings.grace_seconds + EXIT_MARGIN_S)
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                log.error(
                    "worker %d (pid %d) did not exit in time; killing it", slot.index, slot.pid
                )
                slot.process.kill()
        if late:
            await asyncio.wait(late)
        # A slot whose task failed (e.g. the spawn itself) counts as a failed worker.
        codes = [1 if t.exception() else t.result() for t in tasks]
        if self._start_failure is not None:
            log.error("a worker failed to start (exit code %d)", self._start_failure)
            return self._start_failure
        failed = [code for code in codes if code != 0]
        if failed:
            log.error("workers exited with codes %s", codes)
            return 1
        log.info("stopped")
        return 0

    # ------------------------------------------------------------------ one slot

    async def _keep_running(self, slot: WorkerSlot) -> int:
        """Run the slot's worker, again and again until the supervisor stops; returns the
        last worker's exit code."""
        while True:
            code = await self._run_once(slot)
            served = 0.0 if slot.serving_since is None else time.monotonic() - slot.serving_since
            self._gone(slot)
            if self._stopping.is_set():
                return code
            if not self._all_started.is_set():
                # Failing to come up the first time is a configuration problem: stop.
                log.error("worker %d exited with %d before it served", slot.index, code)
                self._start_failure = code if code > 0 else 1
                self._stopping.set()
                return code
            if served >= STABLE_AFTER_S:
                slot.failures_in_a_row = 0
            delay = restart_delay(slot.failures_in_a_row)
            slot.failures_in_a_row += 1
            slot.restarts += 1
            self.metrics.worker_restarts.labels(str(slot.index)).inc()
            log.error(
                "worker %d (exit code %d) died; restart %d in %.2fs",
                slot.index,
                code,
                slot.restarts,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return 0

    async def _run_once(self, slot: WorkerSlot) -> int:
        shadow = await asyncio.to_thread(self._shadow.current)
        parent, child = socket.socketpair()
        try:
            slot.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "serving",
                WORKER_FLAG,
                str(child.fileno()),
                env={**self._env, env_name("shadow"): shadow},
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        slot.started, slot.ready, slot.serving_since = False, False, None
        log.info("worker %d started: pid %d", slot.index, slot.pid)
        channel = slot.channel = await ControlChannel.open(parent)
        # No await between publishing the channel and writing hello: a relayed change is
        # either in hello's snapshot or sent after it, never lost and never before it.
        await channel.send("hello", index=slot.index, unloaded=sorted(self._unloaded))
        while (message := await channel.receive()) is not None:
            await self._handle(slot, message)
        channel.close()
        slot.channel = None
        return await slot.process.wait()

    def _gone(self, slot: WorkerSlot) -> None:
        """A worker exited: its gauges go, it no longer counts as ready, nobody waits on it."""
        self.metrics.worker_up.labels(str(slot.index)).set(0)
        self.metrics.worker_gone(slot.pid)
        slot.started = slot.ready = False
        for ops in (self._replications, self._gatherings):
            for op_id, op in list(ops.items()):
                if op.origin == slot.index:
                    del ops[op_id]
                else:
                    op.waiting.discard(slot.index)
        self._spawn_followups()

    # ------------------------------------------------------------------ messages

    async def _handle(self, slot: WorkerSlot, message: Message) -> None:
        kind = message["type"]
        if kind == "started":
            slot.started, slot.ready = True, message["ready"]
            slot.serving_since = time.monotonic()
            self.metrics.worker_up.labels(str(slot.index)).set(1)
            log.info("worker %d (pid %d) serving, ready=%s", slot.index, slot.pid, slot.ready)
            if all(w.started for w in self.slots):
                self._all_started.set()
            if slot.channel is not None:
                await slot.channel.send("peers", ready=self._peers_ready)
        elif kind == "ready":
            slot.ready = message["ready"]
        elif kind == "control":
            await self._replicate(slot, message)
        elif kind == "applied":
            op = self._replications.get(message["id"])
            if op is not None:
                op.waiting.discard(slot.index)
        elif kind == "stats_request":
            await self._gather(
                slot,
                message,
                "stats_collect",
                "stats_gathered",
                model=message["model"],
                version=message["version"],
            )
        elif kind == "answer_request":
            await self._gather(
                slot,
                message,
                "answer_collect",
                "answer_gathered",
                request_id=message["request_id"],
                index=message["index"],
            )
        elif kind in ("stats_part", "answer_part"):
            gathering = self._gatherings.get(message["id"])
            if gathering is not None and slot.index in gathering.waiting:
                gathering.waiting.discard(slot.index)
                gathering.parts.append(message["stats" if kind == "stats_part" else "answer"])
        else:
            log.warning("worker %d sent an unknown message %r", slot.index, kind)
        await self._followups()

    async def _replicate(self, origin: WorkerSlot, message: Message) -> None:
        """Record a load/unload and send it to every worker (the origin too: see
        WorkerLink._apply), so the supervisor's order is the order everyone applies."""
        action, model = message["action"], message["model"]
        if action == "unload":
            self._unloaded.add(model)
        elif action == "load":
            self._unloaded.discard(model)
        elif action == "policy":
            self._shadow.drop(model)
        self._next_id += 1
        op_id = self._next_id
        live = [w for w in self.slots if w.channel is not None]
        op = self._replications[op_id] = Replication(
            origin.index, message["ref"], {w.index for w in live}
        )
        log.info("worker %d: %s %r; relaying to %d workers", origin.index, action, model, len(live))
        for worker in live:
            channel = worker.channel
            sent = channel is not None and await channel.send(
                "apply", id=op_id, action=action, model=model
            )
            if not sent:
                op.waiting.discard(worker.index)

    async def _gather(
        self, origin: WorkerSlot, message: Message, collect: str, reply: str, **fields: Any
    ) -> None:
        """Ask every other serving worker for its part (``collect`` with ``fields``: its
        statistics, or an answer it holds); _followups answers the origin with ``reply``."""
        self._next_id += 1
        op_id = self._next_id
        others = [w for w in self.slots if w.channel is not None and w.index != origin.index]
        gathering = self._gatherings[op_id] = Gathering(origin.index, message["ref"], reply=reply)
        for worker in others:
            channel = worker.channel
            gathering.waiting.add(worker.index)
            sent = channel is not None and await channel.send(collect, id=op_id, **fields)
            if not sent:
                gathering.waiting.discard(worker.index)

    def _spawn_followups(self) -> None:
        task = asyncio.get_running_loop().create_task(self._followups())
        task.add_done_callback(lambda t: t.exception())

    async def _followups(self) -> None:
        """Answer finished replications and statistics requests; tell every worker when
        all-ready changes."""
        for op_id, op in list(self._replications.items()):
            if not op.waiting:
                del self._replications[op_id]
                origin = self.slots[op.origin].channel
                if origin is not None:
                    await origin.send("replicated", ref=op.ref)
        for op_id, gathering in list(self._gatherings.items()):
            if not gathering.waiting:
                del self._gatherings[op_id]
                origin = self.slots[gathering.origin].channel
                if origin is not None:
                    await origin.send(gathering.reply, ref=gathering.ref, parts=gathering.parts)
        ready = not self._stopping.is_set() and all(w.started and w.ready for w in self.slots)
        if ready != self._peers_ready:
            self._peers_ready = ready
            log.info("all workers ready: %s", ready)
            for worker in self.slots:
                if worker.channel is not None:
                    await worker.channel.send("peers", ready=ready)


def restart_delay(failures_in_a_row: int) -> float:
    """Seconds before starting a dead worker again: doubling per failure in a row, capped."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures_in_a_row, 32))


def run_supervisor(settings: Settings, workers: int, announce: Announce) -> int:
    """Entry point for ``--workers N`` (N > 1)."""
    return event_loop.run(Supervisor(settings, workers).run(announce), settings.event_loop)
