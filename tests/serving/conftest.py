"""Fixtures: a tiny model repository and live servers over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from serving.api import digits_pb2_grpc, open_inference_pb2_grpc
from serving.settings import Settings
from tests.helpers.server_thread import ServerThread
from tests.helpers.tiny_models import linear_sigmoid, linear_softmax, publish


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a softmax model 'cnn' (v1) and a sigmoid model 'one_vs_rest'."""
    root = tmp_path / "models"
    publish(root, "cnn", 1, linear_softmax(seed=1))
    publish(root, "one_vs_rest", 1, linear_sigmoid(seed=2), sigmoid=True)
    return root


def test_settings(repo: Path, **changes: object) -> Settings:
    """Settings for a loopback test server (no polling unless asked)."""
    base = Settings(
        model_repository=repo,
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_host="127.0.0.1",
        metrics_port=-1,
        repository_poll_seconds=0,
        grace_seconds=1,
    )
    return base.replace(**changes)


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture
def make_server(repo: Path) -> Iterator[Callable[..., ServerThread]]:
    """Factory: start a server with settings overrides; all are stopped at teardown."""
    started: list[ServerThread] = []

    def factory(**changes: object) -> ServerThread:
        server = ServerThread(test_settings(repo, **changes)).start()
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
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture
def typed(channel: grpc.Channel) -> digits_pb2_grpc.DigitClassifierStub:
    return digits_pb2_grpc.DigitClassifierStub(channel)


@pytest.fixture
def v2(channel: grpc.Channel) -> open_inference_pb2_grpc.GRPCInferenceServiceStub:
    return open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
