"""Queue bound and deadlines through real gRPC."""

import time

import grpc
import pytest

from serving.api import open_inference_pb2_grpc
from tests.helpers.polling import wait_for
from tests.helpers.requests import random_images, v2_request

LABELS = {"model": "cnn", "version": "1"}


@pytest.fixture
def slow_queue_server(make_server):
    # Batches wait a full second for company: requests stay queued long enough to test.
    return make_server(max_queue_delay_us=1_000_000, max_queue_images=4, max_batch_size=64)


def test_full_queue_gets_resource_exhausted_at_once(slow_queue_server):
    registry = slow_queue_server.app.metrics.registry
    with grpc.insecure_channel(slow_queue_server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        queued = [stub.ModelInfer.future(v2_request(random_images(2))) for _ in range(2)]
        # Both queued (4 of 4 images) before the third call is sent.
        wait_for(lambda: registry.get_sample_value("digits_queue_images", LABELS) == 4, 5)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(v2_request(random_images(1)), timeout=5)
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "queue full" in info.value.details()
        assert time.monotonic() - start < 0.5  # refused at once, not after the batch delay
        assert all(f.result(timeout=10).outputs for f in queued)


def test_deadline_passing_in_queue_is_deadline_exceeded_and_never_computed(slow_queue_server):
    registry = slow_queue_server.app.metrics.registry
    with grpc.insecure_channel(slow_queue_server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(v2_request(random_images(3)), timeout=0.2)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        # The slot is free again and the images were never run.
        wait_for(lambda: registry.get_sample_value("digits_queue_images", LABELS) == 0, 5)
        assert stub.ModelInfer(v2_request(random_images(4)), timeout=5).outputs
        assert registry.get_sample_value("digits_batch_size_sum", LABELS) == 4


def test_cancelled_call_frees_its_queue_slot(slow_queue_server):
    registry = slow_queue_server.app.metrics.registry
    with grpc.insecure_channel(slow_queue_server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        call = stub.ModelInfer.future(v2_request(random_images(4)))
        wait_for(lambda: registry.get_sample_value("digits_queue_images", LABELS) == 4, 5)
        call.cancel()
        wait_for(lambda: registry.get_sample_value("digits_queue_images", LABELS) == 0, 5)
        # The freed slot takes a new request at once (the queue holds only 4 images).
        assert stub.ModelInfer(v2_request(random_images(4)), timeout=5).outputs
