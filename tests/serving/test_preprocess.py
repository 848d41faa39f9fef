"""Encoded photos of digits -> MNIST-style input, judged by the shipped cnn itself."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image, ImageFilter

from serving.errors import InvalidInput
from serving.preprocess import decode, prepare_encoded, to_mnist

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "model_repository" / "cnn" / "1" / "model.onnx"


def photo(digit: np.ndarray, rng: np.random.Generator, fmt: str) -> bytes:
    """An MNIST digit as a 'photo': dark ink on light paper, large, off-centre, blurred."""
    size = int(rng.integers(120, 400))
    canvas = Image.new("L", (size + 80, size + 60), color=int(rng.integers(200, 245)))
    ink = Image.fromarray(255 - digit).resize((size, size), Image.BICUBIC)
    mask = Image.fromarray(digit).resize((size, size), Image.BICUBIC)
    canvas.paste(ink, (int(rng.integers(0, 80)), int(rng.integers(0, 60))), mask)
    canvas = canvas.filter(ImageFilter.GaussianBlur(1.0)).convert("RGB")
    buffer = io.BytesIO()
    canvas.save(buffer, format=fmt, quality=85)
    return buffer.getvalue()


@pytest.mark.skipif(not CNN.is_file(), reason="shipped cnn missing")
def test_photos_of_test_digits_are_classified_like_the_originals():
    from training.mnist import load_mnist

    mnist = load_mnist()
    rng = np.random.default_rng(0)
    images = mnist.x_test[:100]
    files = [photo(img, rng, "JPEG" if i % 2 else "PNG") for i, img in enumerate(images)]
    prepared = prepare_encoded(files)
    assert prepared.shape == (100, 28, 28) and prepared.dtype == np.float32
    session = ort.InferenceSession(str(CNN), providers=["CPUExecutionProvider"])
    predicted = session.run(None, {"images": prepared})[0].argmax(axis=1)
    accuracy = float((predicted == mnist.y_test[:100]).mean())
    # The originals score ~99%; inversion, cropping, rescaling and centring by mass must
    # bring photos close to that (a wrong polarity or no centring scores far lower).
    print(f"\nphotos of 100 test digits: cnn accuracy {accuracy:.2f}")
    assert accuracy >= 0.95, accuracy


def test_dark_on_light_and_light_on_dark_give_the_same_digit():
    digit = np.zeros((60, 40), dtype=np.uint8)
    digit[10:50, 18:24] = 255
    as_is = to_mnist(digit.astype(np.float32) / 255)
    inverted = to_mnist((255 - digit).astype(np.float32) / 255)
    np.testing.assert_allclose(as_is, inverted, atol=1e-6)
    rows, cols = np.indices(as_is.shape)
    total = as_is.sum()
    assert abs((rows * as_is).sum() / total - 13.5) < 1
    assert abs((cols * as_is).sum() / total - 13.5) < 1
    assert as_is.max() == pytest.approx(1.0, abs=0.05)


def test_alpha_is_composited_on_white():
    rgba = np.zeros((50, 50, 4), dtype=np.uint8)
    rgba[10:40, 22:28] = (0, 0, 0, 255)  # opaque black stroke on a transparent background
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    gray = decode(buffer.getvalue())
    assert gray[0, 0] == pytest.approx(1.0) and gray[25, 25] == pytest.approx(0.0)


def test_other_formats_and_bombs_are_refused():
    buffer = io.BytesIO()
    Image.new("L", (10, 10)).save(buffer, format="BMP")
    with pytest.raises(InvalidInput, match="BMP is not supported"):
        decode(buffer.getvalue())
    big = io.BytesIO()
    Image.new("1", (8000, 6000)).save(big, format="PNG")  # 48 Mpixel, tiny file
    with pytest.raises(InvalidInput, match="too large"):
        decode(big.getvalue())
