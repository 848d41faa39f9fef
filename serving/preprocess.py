"""Encoded image (PNG/JPEG, any size) -> a 28x28 float32 image prepared the MNIST way.

MNIST digits are white on black, size-normalised into a 20x20 box preserving
aspect ratio, then centred by centre of mass in a 28x28 field. A photo of a
digit on paper needs the same steps or the models see something they never
trained on.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from serving.errors import InvalidInput

# Refuse decompression bombs well before Pillow's own (warning-only) limit.
MAX_PIXELS = 40_000_000
# Images are shrunk to at most this many pixels on their longer side before any numpy
# work: the final digit is 20x20, and a digit that fills a tenth of a 1024-pixel image
# still has 100 pixels to crop from. Memory then no longer grows with the input size.
WORKING_SIDE = 1024
_INK_THRESHOLD = 0.25


def decode(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode PNG/JPEG bytes to grayscale float32 in [0,1]; alpha is composited on white.

    Large images are reduced inside Pillow (JPEG at decode time via draft, PNG right
    after decoding) so only the full-size native decode itself scales with the pixel count.
    """
    if not data:
        raise InvalidInput(f"{what}: empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ("PNG", "JPEG"):
                raise InvalidInput(f"{what}: {image.format} is not supported; send PNG or JPEG")
            if image.width * image.height > max_pixels:
                raise InvalidInput(
                    f"{what}: {image.width}x{image.height} is too large "
                    f"(max {max_pixels} pixels, --max-image-pixels)"
                )
            factor = -(-max(image.size) // WORKING_SIDE)  # ceil
            if factor > 1 and image.format == "JPEG":
                # The decoder itself scales by 1/2, 1/4 or 1/8: the full image never exists.
                image.draft("L", (max(1, image.width // factor), max(1, image.height // factor)))
            image.load()
            factor = -(-max(image.size) // WORKING_SIDE)
            if factor > 1:
                image = image.reduce(factor)
    except InvalidInput:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        # Pillow's JPEG draft divides by header fields a corrupt file can set to 0.
        ZeroDivisionError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise InvalidInput(f"{what}: cannot decode as PNG/JPEG ({exc})") from None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return gray


def to_mnist(gray: np.ndarray, what: str = "image") -> np.ndarray:
    """Turn a grayscale [H,W] image in [0,1] into an MNIST-style [28,28] float32 image."""
    if gray.ndim != 2 or gray.size == 0:
        raise InvalidInput(f"{what}: expected a 2-D image")
    # Decide the polarity from the border: paper is light, MNIST's field is dark.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if float(np.median(border)) > 0.5:
        gray = 1.0 - gray
    low, high = float(np.percentile(gray, 5)), float(gray.max())
    if high - low < 0.1:
        raise InvalidInput(f"{what}: no digit found (the image is blank or has no contrast)")
    ink = np.clip((gray - low) / (high - low), 0.0, 1.0)
    ys, xs = np.nonzero(ink > _INK_THRESHOLD)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    height, width = ink.shape
    scale = 20.0 / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray((ink * 255).astype(np.uint8)).resize(new_size, Image.LANCZOS)
    digit = np.asarray(resized, dtype=np.float32) / 255.0
    field = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - digit.shape[0]) // 2, (28 - digit.shape[1]) // 2
    field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return _center_by_mass(field)


def _center_by_mass(field: np.ndarray) -> np.ndarray:
    total = field.sum()
    if total <= 0:
        return field
    rows, cols = np.indices(field.shape)
    shift_y = round(13.5 - float((rows * field).sum() / total))
    shift_x = round(13.5 - float((cols * field).sum() / total))
    out = np.zeros_like(field)
    src_y = slice(max(0, -shift_y), min(28, 28 - shift_y))
    dst_y = slice(max(0, shift_y), min(28, 28 + shift_y))
    src_x = slice(max(0, -shift_x), min(28, 28 - shift_x))
    dst_x = slice(max(0, shift_x), min(28, 28 + shift_x))
    out[dst_y, dst_x] = field[src_y, src_x]
    return out


def prepare(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One encoded image -> an MNIST-style float32 [28,28] image."""
    return to_mnist(decode(data, what, max_pixels), what)


def prepare_encoded(images: list[bytes], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode and prepare several encoded images into a float32 [N,28,28] batch."""
    batch = np.empty((len(images), 28, 28), dtype=np.float32)
    for index, data in enumerate(images):
        batch[index] = prepare(data, f"image {index}", max_pixels)
    return batch
