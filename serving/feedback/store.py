"""The one store interface and :func:`open_store`, which picks a backend from its URL.

Backends are synchronous (DB-API) on purpose: the service runs every call on its own writer
thread, so the event loop never waits on a disk or a network, and "accepted" is said only
after the commit returned.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Protocol

from .records import FeedbackData, FeedbackStats, NewFeedback

APP_DIR = "digits-server"
DB_FILE = "feedback.db"


class StoreError(Exception):
    """The store cannot take or give records now (down, full, locked too long, corrupt)."""


class FeedbackStore(Protocol):
    """What every backend offers. Every method may raise :class:`StoreError`."""

    url: str

    def add(self, record: NewFeedback) -> int:
        """Store ``record`` (replacing one with the same answer key); its id, after commit."""
        ...

    def get(self, record_id: int) -> NewFeedback | None:
        """The stored record ``record_id``, or None."""
        ...

    def stats(self) -> FeedbackStats:
        """Counts per model version and the corrections' confusion."""
        ...

    def export(self, model: str = "") -> FeedbackData:
        """Every record (of ``model`` when given) as arrays, oldest first."""
        ...

    def prune(self, before: datetime) -> int:
        """Delete records created before ``before``; how many went."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def state_dir(environ: dict[str, str] | None = None) -> Path:
    """Where the embedded store lives: ``$XDG_STATE_HOME/digits-server``, by default
    ``~/.local/state/digits-server`` (the XDG base directory spec's place for state that
    outlives a run but is not configuration)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP_DIR


def default_url(environ: dict[str, str] | None = None) -> str:
    """``sqlite:///<state dir>/feedback.db``."""
    return f"sqlite:///{state_dir(environ) / DB_FILE}"


def describe(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if ":" in credentials else url


def open_store(url: str) -> FeedbackStore:
    """Connect to the store ``url`` names and bring its schema up to date.

    ``sqlite:///PATH`` (absolute ``sqlite:////abs/path`` or relative ``sqlite:///rel``) or
    ``postgresql://...`` (libpq's URL form). Raises ValueError for another scheme and
    StoreError when the store cannot be reached or migrated.
    """
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"feedback store URL {describe(url)!r}: expected sqlite:///PATH or postgresql://..."
    )
