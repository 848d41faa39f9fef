"""training.plots: every artifact is a real PNG; the confusion matrix counts correctly."""

from __future__ import annotations

import numpy as np
import pytest

from training.plots import (
    confusion_matrix,
    plot_confusion_matrix,
    plot_conv_filters,
    plot_first_layer_weights,
    plot_learning_curves,
    signal_pixels,
    symmetric_limit,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000


def test_confusion_matrix_counts():
    matrix = confusion_matrix(np.array([0, 1, 1, 2, 2, 2]), np.array([0, 1, 2, 2, 2, 0]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 2]]
    assert matrix.sum() == 6


def test_learning_curves(tmp_path):
    history = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.5],
               "accuracy": [0.7, 0.8, 0.85], "val_accuracy": [0.68, 0.79, 0.83]}  # fmt: skip
    assert _is_png(plot_learning_curves(history, tmp_path / "c.png", "m"))


@pytest.mark.parametrize("units", [1, 16])
def test_first_layer_tiles(tmp_path, units):
    kernel = np.random.default_rng(0).normal(size=(784, units)).astype(np.float32)
    assert _is_png(plot_first_layer_weights(kernel, tmp_path / "w.png", "m"))


def test_conv_filters(tmp_path):
    kernel = np.random.default_rng(0).normal(size=(3, 3, 1, 32)).astype(np.float32)
    assert _is_png(plot_conv_filters(kernel, tmp_path / "f.png", "cnn"))


@pytest.mark.parametrize("labels", [[str(d) for d in range(10)], ["not 1", "1"]])
def test_confusion_plot(tmp_path, labels):
    rng = np.random.default_rng(1)
    true = rng.integers(0, len(labels), 500)
    predicted = np.where(rng.random(500) < 0.9, true, rng.integers(0, len(labels), 500))
    assert _is_png(plot_confusion_matrix(true, predicted, labels, tmp_path / "cm.png", "m"))


def test_signal_pixels_and_masked_limits():
    images = np.zeros((1000, 28, 28), np.uint8)
    images[:, 10:18, 10:18] = 200
    images[0, 0, 0] = 255  # lit once: 0.1% of the images
    mask = signal_pixels(images)
    assert mask.sum() == 64 and not mask[0, 0] and mask[12, 12]
    assert signal_pixels(images, 0.001)[0, 0]
    tile = np.where(mask, 0.5, np.nan)
    tile[0, 1] = np.nan
    tile[12, 12] = -3.0
    assert symmetric_limit(tile) == 3.0
    assert symmetric_limit(tile, 50.0) == 0.5
    assert symmetric_limit(np.zeros((2, 2))) == 1.0


def test_first_layer_tiles_with_signal_mask(tmp_path):
    kernel = np.random.default_rng(0).normal(size=(784, 4)).astype(np.float32)
    signal = np.zeros((28, 28), bool)
    signal[4:24, 4:24] = True
    path = plot_first_layer_weights(kernel, tmp_path / "w.png", "m", signal=signal)
    assert _is_png(path)
