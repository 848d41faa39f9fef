"""Review defects of the RPC wrapper and streams, over real gRPC against a live server:
request ids returned in trailing metadata, stream messages counted in flight, and
surprises inside one stream message logged with their traceback and request id."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from serving.logs import make_handler
from tests.helpers.requests import random_images, typed_request


def trailing_id(call: grpc.Call | grpc.RpcError) -> str | None:
    return dict(call.trailing_metadata() or ()).get("x-request-id")


def test_unary_success_and_error_return_the_clients_request_id(typed):
    _response, call = typed.Classify.with_call(
        typed_request(random_images(1)), metadata=[("x-request-id", "abc-1")]
    )
    assert trailing_id(call) == "abc-1"
    with pytest.raises(grpc.RpcError) as err:
        typed.Classify(
            typed_request(random_images(1), model="nope"), metadata=[("x-request-id", "abc-2")]
        )
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert trailing_id(err.value) == "abc-2"


def test_a_generated_request_id_is_returned_when_the_client_sent_none(typed):
    ids = set()
    for _ in range(2):
        _response, call = typed.Classify.with_call(typed_request(random_images(1)))
        ids.add(trailing_id(call))
    assert None not in ids and "" not in ids and len(ids) == 2


def test_stream_success_and_error_return_the_request_id(channel, typed):
    call = typed.ClassifyStream(
        iter([typed_request(random_images(1))]), metadata=[("x-request-id", "s-1")]
    )
    assert len(list(call)) == 1
    assert trailing_id(call) == "s-1"
    # Bytes that are no ClassifyRequest fail the whole stream.
    raw = channel.stream_stream("/digits.v1.DigitClassifier/ClassifyStream")
    call = raw(iter([b"\xff\xff\xff"]), metadata=[("x-request-id", "s-2")])
    with pytest.raises(grpc.RpcError) as err:
        list(call)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert trailing_id(err.value) == "s-2"


def test_unauthenticated_calls_return_the_request_id(make_server):
    server = make_server(auth_token="s3cret")
    with grpc.insecure_channel(server.address) as ch:
        stub = digits_pb2_grpc.DigitClassifierStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Classify(typed_request(random_images(1)), metadata=[("x-request-id", "a-1")])
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert trailing_id(err.value) == "a-1"


def inflight(server) -> float:
    return server.app.metrics.registry.get_sample_value("digits_inflight_requests")


def test_stream_messages_count_in_flight(make_server):
    # A long batch delay holds the messages in the queue while the gauge is read.
    server = make_server(max_queue_delay_us=1_500_000, max_batch_size=64)
    sent, done = threading.Event(), threading.Event()

    def requests() -> Iterator[pb.ClassifyRequest]:
        for i in range(5):
            yield typed_request(random_images(1), request_id=f"m{i}")
        sent.set()
        done.wait(10)  # keep the stream open until the gauge has been read

    with grpc.insecure_channel(server.address) as ch:
        stub = digits_pb2_grpc.DigitClassifierStub(ch)
        call = stub.ClassifyStream(requests(), timeout=20)
        assert sent.wait(10)
        time.sleep(0.5)
        during = inflight(server)
        done.set()
        responses = list(call)
    assert len(responses) == 5
    assert during == 5
    assert inflight(server) == 0


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    """What the server's loggers write, through the server's own text handler."""
    out = io.StringIO()
    handler = make_handler("text", out)
    logger = logging.getLogger("serving")
    logger.addHandler(handler)
    yield out
    logger.removeHandler(handler)


def test_a_surprise_in_one_stream_message_is_logged_with_traceback_and_id(
    server, typed, monkeypatch, server_log
):
    real = server.app.dataplane.classify_pixels

    async def classify_pixels(model, *args, **kwargs):
        if model == "explode":  # a bug deep in the core, for this message only
            raise RuntimeError("boom in the model")
        return await real(model, *args, **kwargs)

    monkeypatch.setattr(server.app.dataplane, "classify_pixels", classify_pixels)
    requests = [
        typed_request(random_images(1), request_id="r1"),
        typed_request(random_images(1), model="explode", request_id="r2"),
        typed_request(random_images(1), request_id="r3"),
    ]
    responses = list(typed.ClassifyStream(iter(requests), metadata=[("x-request-id", "st-9")]))
    errors = [r.error for r in responses if r.WhichOneof("result") == "error"]
    assert len(responses) == 3 and len(errors) == 1
    assert errors[0].code == grpc.StatusCode.INTERNAL.value[0]
    assert "see server logs" in errors[0].message and "st-9" in errors[0].message
    log = server_log.getvalue()
    assert "ERROR serving.grpc.streaming [st-9]: stream message failed" in log, log
    assert "Traceback" in log and "RuntimeError: boom in the model" in log
