"""ClassifyRequest.explain over real gRPC: a 28x28 saliency per prediction, equal to the map
built window by window from the same server's own answers, and bounded per request."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from serving.explain import SIDE, Occlusion
from tests.helpers.requests import random_images, typed_probabilities, typed_request


def explain_request(images: np.ndarray, model: str = ""):
    request = typed_request(images, model=model)
    request.explain = True
    return request


def inked(n: int, seed: int) -> np.ndarray:
    """float32 images with ink in the middle and a black border, like prepared digits."""
    images = np.zeros((n, SIDE, SIDE), dtype=np.float32)
    images[:, 5:23, 7:21] = random_images(n, seed)[:, 5:23, 7:21]
    return images


def reference_map(typed, image: np.ndarray, model: str, occlusion: Occlusion) -> np.ndarray:
    """Every window blanked, each copy classified by the server, drops averaged per pixel."""
    w, s = occlusion.window, occlusion.stride
    corners = [(r, c) for r in range(0, SIDE - w + 1, s) for c in range(0, SIDE - w + 1, s)]
    copies = np.repeat(image[None], len(corners) + 1, axis=0)
    for k, (r, c) in enumerate(corners, start=1):
        copies[k, r : r + w, c : c + w] = occlusion.baseline
    probabilities = typed_probabilities(typed.Classify(typed_request(copies, model=model)))
    target = probabilities[0].argmax()
    total = np.zeros((SIDE, SIDE))
    count = np.zeros((SIDE, SIDE))
    for k, (r, c) in enumerate(corners, start=1):
        total[r : r + w, c : c + w] += probabilities[0, target] - probabilities[k, target]
        count[r : r + w, c : c + w] += 1
    return total / count


@pytest.mark.parametrize("model", ["cnn", "one_vs_rest"])
def test_saliency_equals_the_window_by_window_map(typed, model):
    images = inked(3, seed=4)
    plain = typed.Classify(typed_request(images, model=model))
    explained = typed.Classify(explain_request(images, model=model))
    assert [p.label for p in explained.predictions] == [p.label for p in plain.predictions]
    np.testing.assert_allclose(
        typed_probabilities(explained), typed_probabilities(plain), atol=1e-6
    )
    for image, prediction in zip(images, explained.predictions, strict=True):
        saliency = np.array(prediction.saliency, dtype=np.float32).reshape(SIDE, SIDE)
        expected = reference_map(typed, image, model, Occlusion())
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(saliency, expected, atol=2e-6)
    assert all(len(p.saliency) == 0 for p in plain.predictions)


def test_more_images_than_the_explain_limit_is_invalid_argument(typed):
    with pytest.raises(grpc.RpcError) as info:
        typed.Classify(explain_request(inked(9, seed=1)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the limit is 8" in info.value.details()
    # The same images without explain are fine.
    assert len(typed.Classify(typed_request(inked(9, seed=1))).predictions) == 9


def test_a_stream_explains_the_requests_that_ask(typed):
    asking = explain_request(inked(2, seed=2))
    asking.request_id = "explain"
    plain = typed_request(inked(2, seed=2), request_id="plain")
    replies = {
        r.response.request_id: r.response for r in typed.ClassifyStream(iter([asking, plain]))
    }
    assert [len(p.saliency) for p in replies["explain"].predictions] == [784, 784]
    assert [len(p.saliency) for p in replies["plain"].predictions] == [0, 0]
