"""Encoded image -> MNIST-style 28x28 float32: the names callers have always used.

A thin facade over serving/preparation/, where each step lives; the typed gRPC API,
``/v1/classify``, ``/v1/read`` and the page all go through that one pipeline.
"""

from __future__ import annotations

import numpy as np

from serving.errors import InvalidInput
from serving.preparation import MAX_PIXELS, WORKING_SIDE, decode_rgb, digit_of, prepare
from serving.preparation import prepare_encoded as prepare_encoded

__all__ = ["MAX_PIXELS", "WORKING_SIDE", "decode", "prepare", "prepare_encoded", "to_mnist"]


def decode(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode PNG/JPEG bytes to upright grayscale float32 in [0,1]; alpha on white."""
    return decode_rgb(data, what, max_pixels).rgb.mean(axis=2, dtype=np.float32)


def to_mnist(gray: np.ndarray, what: str = "image") -> np.ndarray:
    """Turn a grayscale [H,W] image in [0,1] into an MNIST-style [28,28] float32 image."""
    if gray.ndim != 2 or gray.size == 0:
        raise InvalidInput(f"{what}: expected a 2-D image")
    return digit_of(np.asarray(gray, dtype=np.float32), what)
