"""Stores for the feedback tests: a SQLite file per test, one real Postgres per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.postgres import TestPostgres, unavailable_reason


@pytest.fixture(scope="session")
def postgres() -> Iterator[TestPostgres]:
    """A real Postgres server (Debian's package) for the whole session; skipped, with the
    reason, only where it cannot start."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = TestPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres: TestPostgres) -> str:
    """The session's Postgres, emptied for this test."""
    postgres.reset()
    return postgres.url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'feedback.db'}"
    return request.getfixturevalue("postgres_url")
