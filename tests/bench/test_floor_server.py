"""bench/floor_server.py: each engine answers a real V2 ModelInfer with the fixed answer."""

import grpc
import numpy as np
import pytest

from bench.servers import start_floor_server
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc


@pytest.mark.parametrize("engine", ["aio", "uvloop", "sync"])
def test_floor_server_answers_model_infer(engine: str) -> None:
    request = pb.ModelInferRequest(model_name="anything")
    request.inputs.add(name="images", datatype="FP32", shape=[1, 28, 28])
    request.raw_input_contents.append(np.ones((1, 28, 28), dtype="<f4").tobytes())
    with start_floor_server(engine) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.ports.grpc}")
        with channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            answer = stub.ModelInfer(request, timeout=10)
    assert list(answer.outputs[0].shape) == [1, 10]
    assert np.frombuffer(answer.raw_output_contents[0], dtype="<f4").tolist() == [0.0] * 10
