"""``digits-client explain`` end to end from a live server, and the overlay it draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clients.__main__ import main
from clients.explain_plot import overlay
from clients.load import synthetic_digits


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An MNIST-format .npz of synthetic digits (no download)."""
    images = synthetic_digits(12, seed=3)
    path = tmp_path / "mnist.npz"
    labels = np.zeros(12, dtype=np.uint8)
    np.savez(path, x_train=images, y_train=labels, x_test=images, y_test=labels)
    return path


def test_explain_writes_one_column_per_digit(server, data, tmp_path, capsys):
    out = tmp_path / "explain.png"
    argv = ["explain", "--server", server.address, "--model", "cnn", "--out", str(out)]
    argv += ["--data", str(data), "--count", "5", "--per-request", "2", "--wait", "5"]
    assert main(argv) == 0
    assert "cnn v1, 5 images" in capsys.readouterr().out
    with Image.open(out) as png:
        width, height = png.size
    assert 5 * 100 <= width <= 5 * 160 and 300 <= height <= 420


def test_more_per_request_than_the_server_allows_fails_with_its_message(
    server, data, tmp_path, capsys
):
    argv = ["explain", "--server", server.address, "--model", "cnn", "--data", str(data)]
    argv += ["--count", "10", "--per-request", "10", "--out", str(tmp_path / "x.png")]
    assert main(argv) == 1
    assert "the limit is 8" in capsys.readouterr().err


def test_overlay_is_red_where_the_answer_rests_and_blue_where_it_is_opposed():
    image = np.zeros((28, 28))
    saliency = np.zeros((28, 28))
    saliency[5, 5], saliency[20, 20] = 0.4, -0.2
    rgb = overlay(image, saliency)
    assert rgb.shape == (28, 28, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[5, 5, 0] > 0.7 > rgb[5, 5, 2]
    assert rgb[20, 20, 2] > rgb[20, 20, 0]
    assert np.allclose(rgb[0, 0], rgb[0, 0, 0])  # untouched pixels stay grey
