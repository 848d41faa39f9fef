"""Start a digits server as a child process and read the ports it bound from its ready line.

The server binds the ports it is given (0 = the OS picks one) and prints exactly one line
when it is ready to serve::

    digits-serve ready grpc=<port> http=<port or -1> metrics=<port or -1> pid=<pid>

This module is the one place that line is parsed. The benchmark, the local cluster and the
tests start servers on port 0 through :class:`ServerProcess` and read the ports back, so no
port is ever guessed (a bind-close-reuse "free port" races with every other process).
Anything that prints the same line (the benchmark's naive server, a multi-worker
supervisor) is started the same way.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from clients.processes import HOST, ChildProcess

_READY = re.compile(
    r"^(?P<program>[\w.-]+) ready grpc=(?P<grpc>\d+) http=(?P<http>-?\d+) "
    r"metrics=(?P<metrics>-?\d+) pid=(?P<pid>\d+)\s*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class ReadyLine:
    """What a server reported when it became ready (None = that listener is off)."""

    program: str
    grpc: int
    http: int | None
    metrics: int | None
    pid: int

    @classmethod
    def find(cls, text: str) -> ReadyLine | None:
        """The first ready line in ``text`` (a log: other lines are skipped), or None."""
        match = _READY.search(text)
        if match is None:
            return None

        def port(group: str) -> int | None:
            value = int(match.group(group))
            return None if value < 0 else value

        return cls(
            program=match.group("program"),
            grpc=int(match.group("grpc")),
            http=port("http"),
            metrics=port("metrics"),
            pid=int(match.group("pid")),
        )

    def format(self) -> str:
        """The line itself, as the server prints it (-1 for a listener that is off)."""
        return (
            f"{self.program} ready grpc={self.grpc} http={_or_off(self.http)} "
            f"metrics={_or_off(self.metrics)} pid={self.pid}"
        )


def _or_off(port: int | None) -> int:
    return -1 if port is None else port


class ServerNotReady(RuntimeError):
    """The server did not print its ready line in time; the message ends with its log tail."""


class ServerProcess(ChildProcess):
    """A server child process whose ports come from its ready line.

    Construct it (the process starts at once), then :meth:`wait_ready`; or use
    :func:`running_server`, which does both and always stops it.
    """

    ready: ReadyLine | None = None

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.05) -> ReadyLine:
        """Block until the ready line appears in the log and return the ports it names.

        Raises ProcessExited (with the log tail) if the process dies first, and
        ServerNotReady after ``timeout`` seconds (the process is left running: the caller
        owns it and stops it).
        """
        deadline = time.monotonic() + timeout
        while self.ready is None:
            self.ready = ReadyLine.find(self.log_text())
            if self.ready is not None:
                break
            if not self.alive():
                raise self.exited_error("it printed its ready line")
            if time.monotonic() > deadline:
                raise ServerNotReady(
                    f"{self.name} (pid {self.pid}) printed no ready line within {timeout:g}s; "
                    f"its log ends with:\n{self.log_tail()}"
                )
            time.sleep(interval)
        return self.ready

    @property
    def ports(self) -> ReadyLine:
        """The ready line (raises if :meth:`wait_ready` has not succeeded)."""
        if self.ready is None:
            raise RuntimeError(f"{self.name} is not ready yet: call wait_ready() first")
        return self.ready

    @property
    def grpc_address(self) -> str:
        """host:port of the gRPC listener (servers started here bind loopback)."""
        return f"{HOST}:{self.ports.grpc}"


def serve_argv(
    repository: Path, *flags: str, python: str = sys.executable, module: str = "serving"
) -> list[str]:
    """``python -m serving`` on ``repository``, gRPC, HTTP and metrics on loopback port 0.

    ``flags`` come last, so they override these defaults (argparse keeps the last value).
    """
    return [
        python,
        "-m",
        module,
        "--model-repository",
        str(repository),
        "--grpc-host",
        HOST,
        "--grpc-port",
        "0",
        "--http-host",
        HOST,
        "--http-port",
        "0",
        "--metrics-host",
        HOST,
        "--metrics-port",
        "0",
        *flags,
    ]


@contextlib.contextmanager
def running_server(
    argv: Sequence[str],
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
    stop_timeout: float = 20.0,
) -> Iterator[ServerProcess]:
    """Start ``argv``, wait for its ready line, yield it; stop it by PID on the way out."""
    server = ServerProcess(argv, name=name, env=env, log_path=log_path, cwd=cwd)
    try:
        server.wait_ready(timeout)
        yield server
    finally:
        server.close(stop_timeout)
