"""A throwaway Postgres server from Debian's ``postgresql`` package, for tests.

initdb + pg_ctl on a fresh data directory and a free port (trust auth, loopback only, its
socket in the data directory): ready in about a second, stopped with ``pg_ctl -m fast``.
As root the server runs as the ``postgres`` user (Postgres refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_ROOT = Path("/usr/lib/postgresql")
USER = "digits"


def postgres_bin() -> Path | None:
    """The newest installed Postgres's bin folder, or None."""
    found = sorted(BIN_ROOT.glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def unavailable_reason() -> str | None:
    """Why a test Postgres cannot start here, or None when it can."""
    if postgres_bin() is None:
        return (
            f"Debian's postgresql is not installed (no {BIN_ROOT}/*/bin/pg_ctl): "
            "run scripts/setup.sh --system"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


def _free_port() -> int:
    # Postgres binds its own port; a port picked here could race, so start() retries.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestPostgres:
    """One server: :meth:`start`, :attr:`url`, :meth:`stop` (and start again)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None, unavailable_reason()
        self.bin = bin_dir
        # A folder of its own in /tmp: pytest's tmp_path lies under a root-only folder
        # that the postgres user cannot enter.
        self.home = Path(tempfile.mkdtemp(prefix="digits-postgres-"))
        self.data_dir = self.home / "data"
        self.port = 0
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.home, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", USER, "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")

    @property
    def url(self) -> str:
        """``postgresql://digits@127.0.0.1:PORT/postgres``."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start on a free port (the same port again after a stop)."""
        for _ in range(5):
            port = self.port or _free_port()
            options = f"-p {port} -k {self.home} -c listen_addresses=127.0.0.1"
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-o",
                    options,
                    "-w",
                    "-l",
                    str(self.data_dir / "server.log"),
                    "start",
                )
            except RuntimeError:
                if self.port:
                    raise
                continue
            self.port = port
            return
        raise RuntimeError("test Postgres did not start; see its server.log")

    def stop(self) -> None:
        """Stop now (fast: open connections are closed)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop if running and delete every file."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def reset(self) -> None:
        """Drop the tables the store made, so a test starts from an empty database."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS feedback, schema_version")
