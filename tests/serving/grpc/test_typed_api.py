"""The typed digits.v1 API over real gRPC against a live server."""

import io

import grpc
import numpy as np
import pytest
from PIL import Image

from serving.api import digits_pb2 as pb
from tests.helpers.requests import random_images, typed_probabilities, typed_request


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_classify_uint8_and_float32_agree(typed):
    images = (random_images(4, seed=5) * 255).round().astype(np.uint8)
    by_uint8 = typed.Classify(typed_request(images, request_id="a"))
    by_float = typed.Classify(typed_request(images.astype(np.float32) / 255, request_id="b"))
    assert by_uint8.request_id == "a" and by_uint8.model == "cnn" and by_uint8.version == "1"
    assert by_uint8.provider == "CPUExecutionProvider"
    assert list(by_uint8.labels) == [str(d) for d in range(10)]
    np.testing.assert_allclose(
        typed_probabilities(by_uint8), typed_probabilities(by_float), atol=1e-6
    )
    for prediction in by_uint8.predictions:
        probs = np.array(prediction.probabilities)
        assert prediction.class_index == probs.argmax()
        assert prediction.label == str(prediction.class_index)
        assert prediction.probability == pytest.approx(probs.max())
        assert probs.sum() == pytest.approx(1, abs=1e-5)


def test_binary_model_answers_with_its_own_labels(typed):
    response = typed.Classify(typed_request(random_images(3), model="one_vs_rest"))
    assert list(response.labels) == ["not 1", "1"]
    for prediction in response.predictions:
        assert prediction.label in ("not 1", "1")
        assert sum(prediction.probabilities) == pytest.approx(1, abs=1e-6)


def test_encoded_png_of_any_size_is_accepted(typed):
    # A dark "1" on white paper, 200x120: the server must invert, crop and centre it.
    paper = np.full((200, 120), 255, dtype=np.uint8)
    paper[30:170, 55:65] = 10
    request = pb.ClassifyRequest(encoded=pb.EncodedImages(images=[png(paper), png(paper)]))
    response = typed.Classify(request)
    assert len(response.predictions) == 2


def test_undecodable_and_blank_images_are_invalid_argument(typed):
    for payload, expected in [
        (b"not an image", "image 0: cannot decode"),
        (png(np.full((40, 40), 255, np.uint8)), "image 0: no digit found"),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            typed.Classify(pb.ClassifyRequest(encoded=pb.EncodedImages(images=[payload])))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert expected in info.value.details()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (pb.RawImages(pixel_type=pb.PIXEL_TYPE_UINT8, count=2, data=bytes(784)), "need 1568 bytes"),
        (pb.RawImages(pixel_type=pb.PIXEL_TYPE_UINT8, count=0, data=b""), "empty batch"),
        (pb.RawImages(count=1, data=bytes(784)), "pixel_type"),
        (
            pb.RawImages(
                pixel_type=pb.PIXEL_TYPE_FLOAT32,
                count=1,
                data=np.full(784, np.inf, np.float32).tobytes(),
            ),
            "NaN or Inf",
        ),
    ],
)
def test_bad_raw_images_are_invalid_argument(typed, raw, expected):
    with pytest.raises(grpc.RpcError) as info:
        typed.Classify(pb.ClassifyRequest(raw=raw))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert expected in info.value.details()


def test_no_images_and_unknown_model(typed):
    with pytest.raises(grpc.RpcError) as info:
        typed.Classify(pb.ClassifyRequest())
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        typed.Classify(typed_request(random_images(1), model="mlp9000"))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_stream_keeps_going_after_a_failed_request(typed):
    requests = [typed_request(random_images(n), request_id=f"r{n}") for n in (1, 2, 3)]
    requests.insert(1, typed_request(random_images(1), model="nope", request_id="bad"))
    responses = list(typed.ClassifyStream(iter(requests)))
    ok = {
        r.response.request_id: len(r.response.predictions)
        for r in responses
        if r.WhichOneof("result") == "response"
    }
    errors = [r.error for r in responses if r.WhichOneof("result") == "error"]
    assert ok == {"r1": 1, "r2": 2, "r3": 3}
    assert len(errors) == 1 and errors[0].request_id == "bad"
    assert errors[0].code == grpc.StatusCode.NOT_FOUND.value[0]


def test_list_and_get_model(typed):
    models = {m.name: m for m in typed.ListModels(pb.ListModelsRequest()).models}
    assert set(models) == {"cnn", "one_vs_rest"}
    assert models["cnn"].ready and models["cnn"].loaded_versions == ["1"]
    assert models["cnn"].provider == "CPUExecutionProvider"
    info = typed.GetModel(pb.GetModelRequest(model="one_vs_rest"))
    assert list(info.labels) == ["not 1", "1"] and "FP32[-1,28,28]" in info.input
    with pytest.raises(grpc.RpcError) as err:
        typed.GetModel(pb.GetModelRequest(model="cnn", version="3"))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
