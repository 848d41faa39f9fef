"""Child processes started by the project's tools, tracked and stopped by their PID.

The benchmark, the local cluster and the tests all start real programs (servers, nginx,
Prometheus). Each one is a :class:`ChildProcess`: its output goes to a log file (read back
for the ready line and for error messages), and it is stopped by its own PID, SIGTERM first
and SIGKILL after a timeout. Nothing is ever matched by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self, TypeVar

HOST = "127.0.0.1"
T = TypeVar("T")


def find_binary(name: str) -> str | None:
    """``name`` on PATH, else Debian's /usr/sbin (nginx lives there, off a user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/sbin") / name
    return str(candidate) if os.access(candidate, os.X_OK) else None


def free_port(host: str = HOST) -> int:
    """A TCP port free on ``host`` right now.

    Only for third-party programs that cannot bind port 0 and report it (nginx,
    Prometheus) or for an address where nothing must listen: another process may take the
    port between this call and its use. Our own servers bind 0 and print the port.
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str, predicate: Callable[[], T | None], timeout: float, interval: float = 0.1
) -> T:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class ProcessExited(RuntimeError):
    """A child exited while it was expected to come up; the message ends with its log tail."""


class ChildProcess:
    """One started program, its log file, and how to stop it by PID.

    ``log_path`` None writes the log to a temporary file that :meth:`close` removes.
    ``new_session`` keeps a terminal's Ctrl-C away from the child, so a parent can stop its
    children in order (servers drain first) instead of everything dying at once.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
        new_session: bool = False,
    ) -> None:
        self.name = name or Path(argv[0]).name
        self._own_log = log_path is None
        if log_path is None:
            fd, raw = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(fd)
            log_path = Path(raw)
        self.log_path = log_path
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=new_session,
            )

    @property
    def pid(self) -> int:
        """The child's PID (the only handle ever used to signal it)."""
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (negative: killed by that signal), else None."""
        return self.popen.poll()

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit and return the exit code (raises subprocess.TimeoutExpired)."""
        return self.popen.wait(timeout)

    def kill(self) -> int:
        """SIGKILL: a crash, no drain (what failover scenarios simulate)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (servers drain, nginx/Prometheus exit), SIGKILL after ``timeout``.

        Returns the exit code (``-9`` when it had to be killed).
        """
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(10)

    def log_text(self) -> str:
        """Everything the process has written so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        """The end of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def exited_error(self, what: str) -> ProcessExited:
        """The error to raise when the process died while ``what`` was awaited."""
        return ProcessExited(
            f"{self.name} (pid {self.pid}) exited with {self.popen.returncode} before {what}; "
            f"its log ends with:\n{self.log_tail()}"
        )

    def close(self, timeout: float = 10.0) -> int:
        """Stop the process and remove its log if it was a temporary one."""
        try:
            return self.stop(timeout)
        finally:
            if self._own_log:
                with contextlib.suppress(OSError):
                    self.log_path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def port_open(port: int, process: ChildProcess | None = None, host: str = HOST) -> bool:
    """True once something accepts TCP connections on ``host:port``.

    Raises ProcessExited if ``process`` (the one expected to listen) has exited meanwhile, so
    a crash is reported with its log instead of as a timeout.
    """
    if process is not None and not process.alive():
        raise process.exited_error(f"listening on port {port}")
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False
