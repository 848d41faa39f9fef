"""serving/grpc/v2_converters.py: the pre-serialised ModelInfer answer is the message itself."""

import numpy as np
import pytest

from serving.api import open_inference_pb2 as pb
from serving.grpc import v2_converters
from serving.grpc.v2_converters import ResponseWriter, response_to_pb
from serving.model_format import digit_manifest
from serving.types import InferResult


def result(rows: int, model: str = "cnn", provider: str = "CPU") -> InferResult:
    outputs = np.random.default_rng(rows).random((rows, 10), dtype=np.float32)
    manifest = digit_manifest(model, [str(d) for d in range(10)])
    return InferResult(outputs, model, "3", provider, manifest)


@pytest.mark.parametrize("request_id", ["", "req-1", "x" * 300])
@pytest.mark.parametrize("rows", [1, 64, 1000])
def test_written_bytes_parse_to_the_built_message(rows, request_id):
    writer = ResponseWriter()
    for _ in range(2):  # the first call builds the head, the second reuses it
        written = pb.ModelInferResponse.FromString(writer.encode(result(rows), request_id))
        assert written == response_to_pb(result(rows), request_id)


def test_heads_differ_by_everything_but_the_id_and_the_data(monkeypatch):
    monkeypatch.setattr(v2_converters, "MAX_HEADS", 3)
    writer = ResponseWriter()
    for answer in (result(1), result(2), result(1, model="mlp"), result(1, provider="CUDA")):
        parsed = pb.ModelInferResponse.FromString(writer.encode(answer, "id"))
        assert parsed == response_to_pb(answer, "id")
    assert len(writer._heads) <= 3
