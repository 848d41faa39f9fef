"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def tiny_repository(tmp_path: Path) -> Path:
    """A model repository of tiny ONNX graphs: 'cnn' (10-class softmax) and 'one_vs_rest'."""
    from tests.helpers.tiny_models import linear_sigmoid, linear_softmax, publish

    root = tmp_path / "tiny-models"
    publish(root, "cnn", 1, linear_softmax(seed=1))
    publish(root, "one_vs_rest", 1, linear_sigmoid(seed=2), sigmoid=True)
    return root


@pytest.fixture
def live_server(tiny_repository: Path) -> Iterator[Any]:
    """A real server (ServerThread) on 127.0.0.1 port 0 serving ``tiny_repository``."""
    from serving.settings import Settings
    from tests.helpers.server_thread import ServerThread

    settings = Settings(
        model_repository=tiny_repository,
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_host="127.0.0.1",
        metrics_port=-1,
        repository_poll_seconds=0,
        grace_seconds=1,
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()
