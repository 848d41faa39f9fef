"""Shared fixtures: a tiny model repository and live servers over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.certs import Pki, make_pki
from tests.helpers.server_thread import ServerThread, loopback_settings
from tests.helpers.tiny_models import linear_sigmoid, linear_softmax, publish


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a softmax model 'cnn' (v1) and a sigmoid model 'one_vs_rest'."""
    root = tmp_path / "models"
    publish(root, "cnn", 1, linear_softmax(seed=1))
    publish(root, "one_vs_rest", 1, linear_sigmoid(seed=2), sigmoid=True)
    return root


@pytest.fixture
def make_server(repo: Path) -> Iterator[Callable[..., ServerThread]]:
    """Factory: start a server with settings overrides; all are stopped at teardown."""
    started: list[ServerThread] = []

    def factory(**changes: object) -> ServerThread:
        server = ServerThread(loopback_settings(repo, **changes)).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., ServerThread]) -> ServerThread:
    """A default live server on the tiny repository."""
    return make_server()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A throwaway CA with a server (localhost) and a client certificate."""
    return make_pki(tmp_path)
