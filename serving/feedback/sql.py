"""The SQL both backends share (DB-API 2 with qmark parameters; Postgres rewrites them).

Subclasses open the connection and say which driver errors mean "the store is unavailable";
everything else (migrations, upsert, stats, export, prune) is written once here.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np

from .records import (
    CORRECT,
    CORRECTED,
    IMAGE_SHAPE,
    FeedbackData,
    FeedbackStats,
    NewFeedback,
    ShadowStats,
    VersionStats,
)
from .schema import MIGRATIONS, statements
from .store import StoreError, describe

log = logging.getLogger(__name__)

_COLUMNS = (
    "answer_key, created_at, model, version, predicted, label, verdict, probabilities, image, "
    "upload, candidate_version, candidate_label"
)
# A repeated correction of the same answer replaces the earlier one and keeps its id.
_UPSERT = (
    f"INSERT INTO feedback ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (answer_key) DO UPDATE SET created_at = excluded.created_at, "
    "model = excluded.model, version = excluded.version, predicted = excluded.predicted, "
    "label = excluded.label, verdict = excluded.verdict, "
    "probabilities = excluded.probabilities, image = excluded.image, upload = excluded.upload, "
    "candidate_version = excluded.candidate_version, candidate_label = excluded.candidate_label "
    "RETURNING id"
)

# Rated answers a shadow candidate also computed: served vs candidate right, and agreement.
_SHADOW_STATS = (
    "SELECT model, version, candidate_version, COUNT(*), "
    "SUM(CASE WHEN predicted = label THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN candidate_label = label THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN candidate_label = predicted THEN 1 ELSE 0 END) "
    "FROM feedback WHERE candidate_version IS NOT NULL "
    "GROUP BY model, version, candidate_version ORDER BY model, version, candidate_version"
)


def _f32(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


class SqlStore(ABC):
    """A :class:`~serving.feedback.store.FeedbackStore` over one DB-API connection, used
    from one thread at a time (the service's writer thread)."""

    dialect = ""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._conn = self._connect()
        except self._unavailable() as exc:
            raise StoreError(f"cannot open feedback store {describe(url)}: {exc}") from None
        try:
            self._migrate()
        except self._unavailable() as exc:
            self._conn.close()
            raise StoreError(f"cannot migrate feedback store {describe(url)}: {exc}") from None

    # ------------------------------------------------------------------ backend hooks

    @abstractmethod
    def _connect(self) -> Any:
        """A DB-API connection (autocommit off)."""

    @abstractmethod
    def _unavailable(self) -> tuple[type[BaseException], ...]:
        """Driver errors that mean the store cannot serve now."""

    def _sql(self, query: str) -> str:
        """``query`` in the driver's parameter style (qmark here)."""
        return query

    @abstractmethod
    def _lock_for_migration(self, cur: Any) -> None:
        """Serialise migrations between processes starting at once (inside the transaction)."""

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor in a transaction: committed on success, rolled back on any error, and a
        driver error raised as StoreError."""
        try:
            cur = self._conn.cursor()
            try:
                yield cur
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()
        except self._unavailable() as exc:
            raise StoreError(f"feedback store {describe(self.url)}: {exc}") from None

    def _execute(self, cur: Any, query: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(self._sql(query), tuple(params))
        return cur

    def _migrate(self) -> None:
        with self._transaction() as cur:
            self._lock_for_migration(cur)
            self._execute(cur, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            row = self._execute(cur, "SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > max(MIGRATIONS):
                raise StoreError(
                    f"feedback store {describe(self.url)} has schema version {current}, newer "
                    f"than this server's {max(MIGRATIONS)}: upgrade the server"
                )
            for version in sorted(v for v in MIGRATIONS if v > current):
                for sql in statements(version, self.dialect):
                    self._execute(cur, sql)
                self._execute(cur, "DELETE FROM schema_version")
                self._execute(cur, "INSERT INTO schema_version (version) VALUES (?)", (version,))
                log.info("feedback store %s: schema version %d", describe(self.url), version)

    def schema_version(self) -> int:
        """The schema version the store is at."""
        with self._transaction() as cur:
            return int(self._execute(cur, "SELECT MAX(version) FROM schema_version").fetchone()[0])

    # ------------------------------------------------------------------ the interface

    def add(self, record: NewFeedback) -> int:
        """Insert (or replace, by answer key) one record; its id once committed."""
        params = (
            record.answer_key,
            record.created_at,
            record.model,
            record.version,
            record.predicted,
            record.label,
            record.verdict,
            _f32(record.probabilities),
            _f32(record.image),
            record.upload,
            record.candidate_version,
            record.candidate_label,
        )
        with self._transaction() as cur:
            return int(self._execute(cur, _UPSERT, params).fetchone()[0])

    def get(self, record_id: int) -> NewFeedback | None:
        """One record by id (None when there is none)."""
        with self._transaction() as cur:
            row = self._execute(
                cur, f"SELECT {_COLUMNS} FROM feedback WHERE id = ?", (record_id,)
            ).fetchone()
        if row is None:
            return None
        key, created, model, version, predicted, label, verdict, probs, image, upload = row[:10]
        return NewFeedback(
            key,
            model,
            version,
            predicted,
            label,
            verdict,
            np.frombuffer(bytes(probs), dtype="<f4").copy(),
            np.frombuffer(bytes(image), dtype="<f4").reshape(IMAGE_SHAPE).copy(),
            float(created),
            None if upload is None else bytes(upload),
            row[10],
            row[11],
        )

    def stats(self) -> FeedbackStats:
        """Counts per model version and verdict; corrections by (predicted, label)."""
        with self._transaction() as cur:
            counts = self._execute(
                cur,
                "SELECT model, version, verdict, COUNT(*) FROM feedback "
                "GROUP BY model, version, verdict",
            ).fetchall()
            pairs = self._execute(
                cur,
                "SELECT model, version, predicted, label, COUNT(*) FROM feedback "
                "WHERE verdict = ? GROUP BY model, version, predicted, label",
                (CORRECTED,),
            ).fetchall()
            shadow = self._execute(cur, _SHADOW_STATS).fetchall()
        per: dict[tuple[str, str], dict[str, int]] = {}
        for model, version, verdict, n in counts:
            per.setdefault((model, version), {})[verdict] = int(n)
        versions = tuple(
            VersionStats(model, version, c.get(CORRECT, 0), c.get(CORRECTED, 0))
            for (model, version), c in sorted(per.items())
        )
        return FeedbackStats(
            versions,
            {tuple(row[:4]): int(row[4]) for row in pairs},
            tuple(ShadowStats(*row[:3], *(int(n) for n in row[3:])) for row in shadow),
        )

    def export(self, model: str = "") -> FeedbackData:
        """Every record (of ``model`` if given), oldest first, as arrays."""
        query = (
            "SELECT id, created_at, model, version, predicted, label, verdict, image FROM feedback"
        )
        params: tuple[Any, ...] = ()
        if model:
            query += " WHERE model = ?"
            params = (model,)
        with self._transaction() as cur:
            rows = self._execute(cur, query + " ORDER BY created_at, id", params).fetchall()
        n = len(rows)
        images = np.zeros((n, *IMAGE_SHAPE), dtype=np.float32)
        for i, row in enumerate(rows):
            images[i] = np.frombuffer(bytes(row[7]), dtype="<f4").reshape(IMAGE_SHAPE)

        def column(i: int, dtype: Any) -> np.ndarray:
            return np.array([row[i] for row in rows], dtype=dtype)

        return FeedbackData(
            ids=column(0, np.int64),
            images=images,
            labels=column(5, np.str_),
            predicted=column(4, np.str_),
            models=column(2, np.str_),
            versions=column(3, np.str_),
            verdicts=column(6, np.str_),
            created_at=column(1, np.float64),
        )

    def prune(self, before: datetime) -> int:
        """Delete what was created before ``before`` (an aware datetime, or naive = UTC)."""
        from .reading import epoch_seconds

        with self._transaction() as cur:
            cur = self._execute(
                cur, "DELETE FROM feedback WHERE created_at < ?", (epoch_seconds(before),)
            )
            return int(cur.rowcount)

    def count(self) -> int:
        """Records stored."""
        with self._transaction() as cur:
            return int(self._execute(cur, "SELECT COUNT(*) FROM feedback").fetchone()[0])

    def close(self) -> None:
        """Close the connection (errors on close are of no use to anyone)."""
        try:
            self._conn.close()
        except Exception as exc:  # closing a broken connection
            log.debug("closing feedback store: %s", exc)
