"""The shared backend: Postgres through psycopg 3, for replicas that share one store."""

from __future__ import annotations

from typing import Any

import psycopg

from .sql import SqlStore

CONNECT_TIMEOUT_S = 5
# Any number both processes agree on: serialises schema migrations of servers starting at once.
MIGRATION_LOCK = 0x64696769  # "digi"


class PostgresStore(SqlStore):
    """The feedback store in a Postgres database (the schema lives in its search path)."""

    dialect = "postgresql"

    def _connect(self) -> Any:
        return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=False)

    def _unavailable(self) -> tuple[type[BaseException], ...]:
        return (psycopg.OperationalError, psycopg.errors.DiskFull, psycopg.InterfaceError)

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    def _lock_for_migration(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
