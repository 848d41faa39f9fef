"""MNIST test images for the clients, and how a digit maps to a model's labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clients.connection import ClientError


def first_test_images(count: int, data: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` MNIST test images (uint8 [N,28,28]) and their digits.

    Uses the training package's verified loader (numpy only, no TensorFlow):
    a local file if given, else its caches, else a one-time download.
    """
    from training.mnist import MnistError, load_mnist

    try:
        mnist = load_mnist(data)
    except MnistError as exc:
        raise ClientError(f"cannot load MNIST: {exc}") from None
    return mnist.x_test[:count], mnist.y_test[:count].astype(np.int64)


def true_label(digit: int, labels: Sequence[str]) -> str:
    """The label a correct model gives ``digit``: ``"7"``, or ``"1"``/``"not 1"`` for binary."""
    text = str(digit)
    if text in labels:
        return text
    # One-vs-rest models label the other class "not <digit>".
    for label in labels:
        if label.startswith("not ") and label[4:] != text:
            return label
    return text
