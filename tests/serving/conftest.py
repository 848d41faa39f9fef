"""Channels and stubs to the live server of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from serving.api import digits_pb2_grpc, open_inference_pb2_grpc
from tests.helpers.server_thread import ServerThread


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
