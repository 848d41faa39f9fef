"""bench/floor_server.py: each engine answers a real V2 ModelInfer with the fixed answer."""

import argparse

import grpc
import numpy as np
import pytest

from bench.floor_server import parse_option
from bench.servers import start_floor_server
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc


def _request(batch: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="anything")
    request.inputs.add(name="images", datatype="FP32", shape=[batch, 28, 28])
    request.raw_input_contents.append(np.ones((batch, 28, 28), dtype="<f4").tobytes())
    return request


@pytest.mark.parametrize("engine", ["aio", "uvloop", "sync"])
def test_floor_server_answers_model_infer(engine: str) -> None:
    request = _request(1)
    with start_floor_server(engine) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.ports.grpc}")
        with channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            answer = stub.ModelInfer(request, timeout=10)
    assert list(answer.outputs[0].shape) == [1, 10]
    assert np.frombuffer(answer.raw_output_contents[0], dtype="<f4").tolist() == [0.0] * 10


def test_the_batch_64_floor_answers_64_rows_with_the_channel_options_given() -> None:
    # A 200 KB request needs more than the 64 KiB receive limit set here: the option applies.
    limit = ("--option", "grpc.max_receive_message_length=65536")
    with (
        start_floor_server("uvloop", ("--rows", "64", *limit)) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.ports.grpc}") as channel,
    ):
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert list(stub.ModelInfer(_request(4), timeout=10).outputs[0].shape) == [64, 10]
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(_request(64), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_an_option_that_is_not_name_equals_int_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=INT"):
        parse_option("grpc.http2.max_frame_size=big")
