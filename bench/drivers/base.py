"""The interface a benchmark client kind implements (one module per kind in this package).

A driver opens a session against one running server, then runs one scenario at a time on
it: it sends the scenario's load, calls ``window.start()`` / ``window.end()`` at the edges
of the measured window (the benchmark reads CPU and batch counters there) and returns the
numbers in the load generator's summary format (``clients.load.LoadResult.summary``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bench.scenarios import Plan, Scenario


@dataclass(frozen=True)
class RunningServer:
    """A running server to send load to."""

    address: str
    server_pid: int
    metrics_port: int | None
    # http://host:port of its HTTP transport; None = it has none (the naive server).
    http_url: str | None = None


class Window(Protocol):
    """The edges of a measured window."""

    def start(self) -> None:
        """The measured window begins now."""

    def end(self) -> None:
        """The measured window ends now."""


@dataclass(frozen=True)
class ClientRun:
    """What a driver measured: the summary numbers and the verified images they cover."""

    summary: dict[str, Any]
    images: int
    # CPU seconds the client used in the window when it is not the session's client_pid
    # (an external tool run as a child process); None = read from client_pid.
    client_cpu_seconds: float | None = None


class Session(Protocol):
    """A driver connected to one server."""

    # The process whose CPU counts as the client's (the benchmark itself for in-process
    # clients, the tool's process for external ones).
    client_pid: int

    async def run(
        self, scenario: Scenario, plan: Plan, images: np.ndarray, window: Window
    ) -> ClientRun:
        """Send ``scenario``'s load and return what the measured window saw."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class Driver(Protocol):
    """A client kind: its name (the rows' ``client`` field) and the APIs it can send."""

    name: str
    apis: tuple[str, ...]

    async def open(self, target: RunningServer) -> Session:
        """Connect to ``target``."""
        ...
