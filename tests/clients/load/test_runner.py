"""The closed loop against a live server and against a misbehaving one."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from clients.connection import ClientError, Endpoint
from clients.load import LoadConfig, LoadResult, run_load_sync
from serving.api import digits_pb2_grpc
from tests.clients.load.responses import typed_response


def run(address: str, model: str = "cnn", **settings: Any) -> LoadResult:
    """One closed-loop run (no warm-up unless given) against ``address``."""
    return run_load_sync(LoadConfig(Endpoint(address), model, **{"warmup": 0, **settings}))


@pytest.mark.parametrize("api", ["typed", "v2", "stream"])
def test_two_seconds_without_errors(server, api):
    result = run(server.address, api=api, concurrency=8, batch=4, duration=2.0, warmup=0.2)
    assert result.errors == {}
    assert result.requests > 20 and result.images == result.requests * 4
    assert 1.9 <= result.elapsed <= 3.0
    assert result.provider == "CPUExecutionProvider" and result.version == "1"
    assert result.latency_ms(0.5) <= result.latency_ms(0.99) <= result.latency_ms(1.0)


def test_max_requests_bounds_the_run(server):
    result = run(
        server.address,
        "one_vs_rest",
        api="stream",
        concurrency=4,
        duration=30,
        max_requests=40,
        streams=2,
    )
    # Workers stop starting requests at 40; the few already in flight still finish.
    assert result.errors == {} and 40 <= result.requests < 44
    assert result.elapsed < 10


def test_unknown_model_fails_fast_with_one_message(server):
    with pytest.raises(ClientError, match="NOT_FOUND"):
        run(server.address, "nope", duration=1)


class _MisbehavingServer(digits_pb2_grpc.DigitClassifierServicer):
    """Answers the probe correctly, then drops a prediction from every other answer; its
    stream never answers at all."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def Classify(self, request, context):
        with self.lock:
            self.calls += 1
            calls = self.calls
        count = request.raw.count
        return typed_response(batch=count if calls == 1 or calls % 2 else count - 1)

    def ClassifyStream(self, request_iterator, context):
        for _ in request_iterator:
            pass
        yield from ()


@pytest.fixture
def misbehaving_server():
    server = grpc.server(ThreadPoolExecutor(4))
    digits_pb2_grpc.add_DigitClassifierServicer_to_server(_MisbehavingServer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_wrong_answers_are_counted_as_errors(misbehaving_server):
    result = run(misbehaving_server, concurrency=2, batch=2, duration=0.5)
    assert result.requests > 5 and result.errors.get("INVALID_RESPONSE", 0) > 5
    assert set(result.errors) == {"INVALID_RESPONSE"}


def test_unanswered_stream_requests_end_the_run(misbehaving_server):
    started = time.monotonic()
    result = run(
        misbehaving_server, api="stream", concurrency=3, batch=2, duration=0.2, timeout=0.5
    )
    assert result.requests == 0 and result.errors == {"DEADLINE_EXCEEDED": 3}
    assert time.monotonic() - started < 8
