"""/v1/classify?explain=true on the shipped models: a 28x28 saliency per prediction whose
hottest pixels matter to the model more than random ink does (100 MNIST test digits)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.http import error_of, http
from tests.helpers.server_thread import ServerThread, loopback_settings
from tests.serving.http.test_rest_typed import drawn_png

SHIPPED = Path(__file__).resolve().parents[3] / "model_repository"
DIGITS = 100
# 10% of the 784 pixels.
OCCLUDED = 78


@pytest.fixture(scope="module")
def shipped() -> Iterator[ServerThread]:
    server = ServerThread(loopback_settings(SHIPPED)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from clients.mnist_images import first_test_images

    images, labels = first_test_images(DIGITS)
    return images.astype(np.float32) / 255, labels


def classify(server: ServerThread, images: np.ndarray, query: str = "") -> dict:
    body = json.dumps({"images": images.tolist(), "pixel_type": "float32"}).encode()
    status, _, reply = http(
        "POST", f"{server.http_url}/v1/classify?{query}", body, {"content-type": "application/json"}
    )
    assert status == 200, reply
    return json.loads(reply)


def test_explain_adds_a_map_per_prediction_and_keeps_the_answer(shipped, digits):
    images, labels = digits
    plain = classify(shipped, images[:4])
    explained = classify(shipped, images[:4], "explain=true")
    assert [p["label"] for p in explained["predictions"]] == [str(d) for d in labels[:4]]
    for before, after in zip(plain["predictions"], explained["predictions"], strict=True):
        assert "saliency" not in before
        np.testing.assert_allclose(after["probabilities"], before["probabilities"], atol=1e-5)
        saliency = np.asarray(after["saliency"])
        assert saliency.shape == (28, 28) and saliency.max() > 0


def test_explain_works_on_an_uploaded_drawing_with_debug(shipped):
    status, _, reply = http(
        "POST",
        f"{shipped.http_url}/v1/classify?debug=1&explain=1&model=cnn",
        drawn_png("7"),
        {"content-type": "image/png"},
    )
    assert status == 200, reply
    answer = json.loads(reply)
    (prediction,) = answer["predictions"]
    prepared = np.asarray(answer["prepared"][0])
    saliency = np.asarray(prediction["saliency"])
    assert prediction["label"] == "7" and saliency.shape == prepared.shape == (28, 28)
    # Blanking black background changes nothing: the map is 0 wherever no window has ink.
    far = np.ones((28, 28), dtype=bool)
    for r, c in zip(*np.nonzero(prepared), strict=True):
        far[max(0, r - 3) : r + 4, max(0, c - 3) : c + 4] = False
    assert far.any() and np.all(saliency[far] == 0)


def test_more_images_than_the_limit_is_400_and_the_server_keeps_serving(shipped, digits):
    images, _ = digits
    body = json.dumps({"images": images[:9].tolist(), "pixel_type": "float32"}).encode()
    status, _, reply = http(
        "POST",
        f"{shipped.http_url}/v1/classify?explain=1",
        body,
        {"content-type": "application/json"},
    )
    assert status == 400
    assert "explain: 9 images in one request; the limit is 8" in error_of(reply)
    assert len(classify(shipped, images[:9])["predictions"]) == 9


def test_occluding_the_hottest_tenth_hurts_more_than_random_ink(shipped, digits):
    """The map's top 10% of pixels vs as many random ink pixels, blanked, on 100 digits."""
    images, _ = digits
    predictions = [
        p
        for start in range(0, DIGITS, 8)
        for p in classify(shipped, images[start : start + 8], "explain=1")["predictions"]
    ]
    predicted = np.array([p["class_index"] for p in predictions])
    base = np.array([p["probability"] for p in predictions])
    rng = np.random.default_rng(0)
    flat = images.reshape(DIGITS, -1)
    hottest, random_ink = flat.copy(), flat.copy()
    for i, prediction in enumerate(predictions):
        saliency = np.asarray(prediction["saliency"]).reshape(-1)
        hottest[i, np.argsort(-saliency, kind="stable")[:OCCLUDED]] = 0
        ink = np.flatnonzero(flat[i] > 0)
        random_ink[i, rng.choice(ink, min(OCCLUDED, len(ink)), replace=False)] = 0

    def drops(occluded: np.ndarray) -> np.ndarray:
        answer = classify(shipped, occluded.reshape(-1, 28, 28))["predictions"]
        after = np.array([p["probabilities"][c] for p, c in zip(answer, predicted, strict=True)])
        return base - after

    hot, rand = drops(hottest), drops(random_ink)
    print(
        f"mean drop: hottest 10% {hot.mean():.3f}, random ink {rand.mean():.3f}; "
        f"hottest hurts more on {(hot > rand).sum()}/{DIGITS} digits"
    )
    assert hot.mean() > rand.mean() + 0.1
    assert (hot > rand).mean() > 0.6
