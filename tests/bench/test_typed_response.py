"""bench.typed_response: the builders compared must build the same answer."""

import numpy as np

from bench.typed_response import add_loop, message_list, packed_bytes
from serving.api import digits_pb2 as pb
from serving.api import open_inference_pb2 as v2


def test_builders_agree_and_measure_runs():
    probs = np.random.default_rng(1).random((5, 10)).astype(np.float32)
    looped = pb.ClassifyResponse.FromString(add_loop(probs))
    assert looped == pb.ClassifyResponse.FromString(message_list(probs))
    assert [p.class_index for p in looped.predictions] == probs.argmax(1).tolist()
    raw = v2.ModelInferResponse.FromString(packed_bytes(probs)).raw_output_contents[0]
    assert np.frombuffer(raw, "<f4").reshape(5, 10).tolist() == probs.tolist()
