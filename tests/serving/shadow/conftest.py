"""Fixtures of the shadow tests: the two-version repository and live servers on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.server_thread import ServerThread, loopback_settings
from tests.helpers.shadow import SOURCES, publish_copy

# The feedback tests' real Postgres (one server per session), for the shadow feedback test.
from tests.serving.feedback.conftest import postgres, postgres_url  # noqa: F401


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """``cnn`` v1 (shipped cnn) and v2 (shipped robust)."""
    root = tmp_path / "models"
    for version, source in SOURCES.items():
        publish_copy(root, "cnn", version, source)
    return root


@pytest.fixture
def start(repo: Path) -> Iterator[Callable[..., ServerThread]]:
    """Factory: a live server on ``repo`` with repository control on; stopped at teardown."""
    started: list[ServerThread] = []

    def factory(**changes: object) -> ServerThread:
        settings = loopback_settings(repo, **({"model_control": "on"} | changes))
        server = ServerThread(settings).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
