"""The load generator's verification of every answer."""

import numpy as np
import pytest

from clients.load import BadResponse, Expect, check_typed, check_v2
from serving.api import open_inference_pb2 as v2pb
from tests.clients.load.responses import typed_response


def test_check_typed_accepts_a_good_response_and_rejects_bad_ones():
    expect = Expect(batch=2, labels=tuple(str(d) for d in range(10)))
    check_typed(typed_response(), expect)

    short = typed_response(batch=1)
    with pytest.raises(BadResponse, match="1 predictions for 2"):
        check_typed(short, expect)

    not_normalised = typed_response()
    not_normalised.predictions[1].probabilities[5] = 0.31
    with pytest.raises(BadResponse, match="sum"):
        check_typed(not_normalised, expect)

    wrong_label = typed_response()
    wrong_label.predictions[0].label = "5"
    with pytest.raises(BadResponse, match="arg-max"):
        check_typed(wrong_label, expect)

    not_argmax = typed_response()
    not_argmax.predictions[0].class_index = 5
    not_argmax.predictions[0].label = "5"
    with pytest.raises(BadResponse, match="arg-max"):
        check_typed(not_argmax, expect)

    other_labels = typed_response()
    other_labels.labels[0] = "zero"
    with pytest.raises(BadResponse, match="labels"):
        check_typed(other_labels, expect)


def _v2_response(values: np.ndarray) -> v2pb.ModelInferResponse:
    response = v2pb.ModelInferResponse(model_name="cnn", model_version="1")
    response.outputs.add(name="probabilities", datatype="FP32", shape=list(values.shape))
    response.raw_output_contents.append(values.astype("<f4").tobytes())
    return response


def test_check_v2():
    good = np.full((3, 10), 0.1, dtype=np.float32)
    check_v2(_v2_response(good), Expect(batch=3, width=10))
    check_v2(_v2_response(np.array([[0.2], [0.9]], dtype=np.float32)), Expect(batch=2))
    with pytest.raises(BadResponse, match="for 4 images"):
        check_v2(_v2_response(good), Expect(batch=4))
    with pytest.raises(BadResponse, match="sum to 1"):
        check_v2(_v2_response(good * 2), Expect(batch=3))
    with pytest.raises(BadResponse, match=r"\[0, 1\]"):
        check_v2(_v2_response(np.array([[1.5]], dtype=np.float32)), Expect(batch=1))
    truncated = _v2_response(good)
    truncated.raw_output_contents[0] = truncated.raw_output_contents[0][:-4]
    with pytest.raises(BadResponse, match="29 output values"):
        check_v2(truncated, Expect(batch=3))
    truncated.raw_output_contents[0] = truncated.raw_output_contents[0][:-1]
    with pytest.raises(BadResponse, match="115 output bytes"):
        check_v2(truncated, Expect(batch=3))
