"""Schema 2 (the shadow candidate's columns) migrates a store written at schema 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.feedback import schema, sql
from serving.feedback.records import NewFeedback
from serving.feedback.store import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_schema_1_store_migrates_and_keeps_its_records(url, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(sql, "MIGRATIONS", {1: schema.MIGRATIONS[1]})
        old = open_store(url)
        assert old.schema_version() == 1
        with old._transaction() as cur:
            old._execute(
                cur,
                "INSERT INTO feedback (answer_key, created_at, model, version, predicted, "
                "label, verdict, probabilities, image) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ("a#0", 1.0, "cnn", "1", "3", "8", "corrected", b"\0" * 40, b"\0" * 3136),
            )
        old.close()
    store = open_store(url)
    try:
        assert store.schema_version() == schema.SCHEMA_VERSION == 2
        (record_id,) = store.export().ids.tolist()
        kept = store.get(record_id)
        assert (kept.label, kept.candidate_version, kept.candidate_label) == ("8", None, None)
        fresh = NewFeedback(
            "b#0",
            "cnn",
            "1",
            "3",
            "3",
            "correct",
            np.zeros(10),
            np.zeros((28, 28)),
            2.0,
            candidate_version="2",
            candidate_label="5",
        )
        got = store.get(store.add(fresh))
        assert (got.candidate_version, got.candidate_label) == ("2", "5")
        assert store.stats().shadow[0].rated == 1
    finally:
        store.close()
