"""The embedded backend: one SQLite file, safe for several worker processes.

WAL mode lets readers run beside the one writer, and the busy timeout makes a writer wait
for another process's transaction instead of failing at once; each process writes from its
one writer thread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .sql import SqlStore

# How long a write waits for another process's write before the store counts as unavailable.
BUSY_TIMEOUT_MS = 5000


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/path`` -> rel/path, ``sqlite:////abs/path`` -> /abs/path."""
    path = url.removeprefix("sqlite:///")
    if not path:
        raise ValueError("sqlite:/// URL without a path")
    return Path(path)


class SqliteStore(SqlStore):
    """The feedback store in one SQLite file (made with its folder when missing)."""

    dialect = "sqlite"

    def _connect(self) -> Any:
        path = sqlite_path(self.url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise sqlite3.OperationalError(f"cannot make {path.parent}: {exc}") from None
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level="DEFERRED",
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL never corrupts; a power cut may lose the last commits, which a
        # committed answer to a client must not: FULL syncs the WAL on every commit.
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _unavailable(self) -> tuple[type[BaseException], ...]:
        # OperationalError: locked, disk full, cannot open; DatabaseError: corrupt file.
        return (sqlite3.OperationalError, sqlite3.DatabaseError)

    def _lock_for_migration(self, cur: Any) -> None:
        # Take the write lock first, so two workers starting together migrate one at a time.
        cur.execute("BEGIN IMMEDIATE")
