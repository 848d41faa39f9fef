"""Both store backends against real databases: a SQLite file and a real Postgres server."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from serving.feedback.reading import read_feedback
from serving.feedback.records import CORRECT, CORRECTED, NewFeedback
from serving.feedback.schema import SCHEMA_VERSION
from serving.feedback.store import StoreError, default_url, describe, open_store


def record(
    key: str | None, predicted: str = "1", label: str = "7", when: float = 1.0e9, **changes: object
) -> NewFeedback:
    rng = np.random.default_rng(abs(hash(key)) % 2**32)
    fields: dict = {
        "answer_key": key,
        "model": "cnn",
        "version": "1",
        "predicted": predicted,
        "label": label,
        "verdict": CORRECT if predicted == label else CORRECTED,
        "probabilities": rng.random(10, dtype=np.float32),
        "image": rng.random((28, 28), dtype=np.float32),
        "created_at": when,
    }
    fields.update(changes)
    return NewFeedback(**fields)


def test_add_get_round_trip_is_exact(store_url: str) -> None:
    store = open_store(store_url)
    try:
        sent = record("a#0", upload=b"\x89PNG...")
        got = store.get(store.add(sent))
        assert got is not None
        assert np.array_equal(got.image, sent.image) and got.image.dtype == np.float32
        assert np.array_equal(got.probabilities, sent.probabilities)
        assert (got.model, got.label, got.verdict, got.upload) == (
            "cnn",
            "7",
            CORRECTED,
            sent.upload,
        )
        assert store.get(10_000) is None
    finally:
        store.close()


def test_feedback_on_the_same_answer_replaces_it_and_keeps_its_id(store_url: str) -> None:
    store = open_store(store_url)
    try:
        first = store.add(record("a#0", label="7"))
        again = store.add(record("a#0", label="1"))
        other = store.add(record("a#1"))
        uploads = {store.add(record(None)), store.add(record(None))}
        assert again == first and other != first and len(uploads) == 2
        assert store.get(first).verdict == CORRECT
        assert store.count() == 4
    finally:
        store.close()


def test_stats_count_per_version_and_confusion(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.add(record("a#0", "1", "1"))
        store.add(record("b#0", "1", "7"))
        store.add(record("c#0", "1", "7"))
        store.add(record("d#0", "3", "8", version="2"))
        stats = store.stats()
        by_version = {(v.model, v.version): v for v in stats.versions}
        assert by_version["cnn", "1"].correct == 1 and by_version["cnn", "1"].corrected == 2
        assert by_version["cnn", "1"].accuracy == pytest.approx(1 / 3)
        assert by_version["cnn", "2"].accuracy == 0
        assert stats.confusion == {("cnn", "1", "1", "7"): 2, ("cnn", "2", "3", "8"): 1}
    finally:
        store.close()


def test_export_prune_and_read_feedback(store_url: str) -> None:
    store = open_store(store_url)
    day = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    try:
        for i in range(5):
            store.add(record(f"r{i}#0", label=str(i), when=day + i * 86400))
        store.add(record("x#0", model="other", when=day))
        data = store.export("cnn")
        assert list(data.labels) == ["0", "1", "2", "3", "4"]
        assert data.images.shape == (5, 28, 28) and data.images.dtype == np.float32
        assert np.all(np.diff(data.created_at) > 0)
        assert store.prune(datetime(2026, 12, 3)) == 3  # naive = UTC; r0, r1 and "other"
        assert len(store.export()) == 3
    finally:
        store.close()
    again = read_feedback(store_url)
    assert list(again.labels) == ["2", "3", "4"] and set(again.models) == {"cnn"}


def test_migrations_run_once_and_a_newer_schema_is_refused(store_url: str) -> None:
    first = open_store(store_url)
    first.add(record("a#0"))
    assert first.schema_version() == SCHEMA_VERSION
    first.close()
    second = open_store(store_url)  # migrating again changes nothing
    assert second.count() == 1 and second.schema_version() == SCHEMA_VERSION
    with second._transaction() as cur:
        second._execute(cur, "UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    second.close()
    with pytest.raises(StoreError, match="newer than this server"):
        open_store(store_url)


def test_unreachable_stores_raise_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot open"):
        open_store(f"sqlite:///{tmp_path / 'file' / 'sub' / 'feedback.db'}")
    with pytest.raises(StoreError, match="cannot open"):
        open_store("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ValueError, match="expected sqlite"):
        open_store("mysql://x")


def test_default_url_and_password_never_shown() -> None:
    assert default_url({"XDG_STATE_HOME": "/s"}) == "sqlite:////s/digits-server/feedback.db"
    assert describe("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


def _write_many(url: str, worker: int, count: int) -> None:
    store = open_store(url)
    for i in range(count):
        store.add(record(f"w{worker}-{i}#0"))
    store.close()


def test_sqlite_several_processes_writing_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    # Fresh interpreters, as worker processes are, all migrating and writing at once.
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_write_many, args=(url, w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with sqlite3.connect(tmp_path / "feedback.db") as conn:
        assert conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT answer_key) FROM feedback"
        ).fetchone() == (600, 600)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
