"""Steps 1-2: encoded bytes -> a bounded, upright RGB image.

Only PNG and JPEG are accepted. Large images are reduced inside Pillow (JPEG at decode time
via draft, PNG right after decoding), so only the native decode itself scales with the pixel
count; every later step works on at most ``WORKING_SIDE`` pixels per side.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from serving.errors import InvalidInput

# Refuse decompression bombs well before Pillow's own (warning-only) limit.
MAX_PIXELS = 40_000_000
# Images are shrunk to at most this many pixels on their longer side before any numpy
# work: the final digit is 20x20, and a digit that fills a tenth of a 1024-pixel image
# still has 100 pixels to crop from. Memory then no longer grows with the input size.
WORKING_SIDE = 1024
ACCEPTED = "PNG or JPEG (image/png, image/jpeg)"
# Errors Pillow raises for bytes it cannot read as an image.
_UNREADABLE = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    # Pillow's JPEG draft divides by header fields a corrupt file can set to 0.
    ZeroDivisionError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


# Where Pillow finds an orientation (EXIF, or XMP in JPEG and PNG).
_MAY_BE_TURNED = frozenset({"exif", "Raw profile type exif", "xmp", "XML:com.adobe.xmp"})


@dataclass(frozen=True, slots=True)
class Decoded:
    """An upright image as float32 RGB in [0,1], and the size it has at full resolution.

    ``rgb`` may be reduced; ``full_size`` (width, height) is the input's size after EXIF
    orientation, the frame in which answers give boxes.
    """

    rgb: np.ndarray
    full_size: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) factors from ``rgb`` pixels to full-size pixels."""
        height, width = self.rgb.shape[:2]
        return self.full_size[0] / width, self.full_size[1] / height


def _describe(data: bytes) -> str:
    """What the first bytes of an unreadable upload look like, for the error message."""
    head = data[:16]
    if head.lstrip().startswith((b"{", b"[")):
        return "looks like JSON (send JSON pixels with Content-Type application/json)"
    if head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml", b"<svg")):
        return "looks like HTML/XML text"
    if head.startswith(b"\x89PNG"):
        return "a PNG signature but a damaged file"
    if head.startswith(b"\xff\xd8"):
        return "a JPEG signature but a damaged file"
    return f"starts with bytes {head[:8].hex(' ')}"


def open_bounded(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode PNG/JPEG bytes, reduced to at most ``WORKING_SIDE`` per side (EXIF kept).

    Raises InvalidInput naming the problem and what is accepted: empty, not PNG/JPEG, too
    many pixels, or bytes that do not decode.
    """
    if not data:
        raise InvalidInput(f"{what}: empty; send a {ACCEPTED} file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ("PNG", "JPEG"):
                raise InvalidInput(f"{what}: {image.format} is not supported; send {ACCEPTED}")
            if image.width * image.height > max_pixels:
                raise InvalidInput(
                    f"{what}: {image.width}x{image.height} is too large "
                    f"(max {max_pixels} pixels, --max-image-pixels)"
                )
            full_size = image.size
            factor = -(-max(image.size) // WORKING_SIDE)  # ceil
            if factor > 1 and image.format == "JPEG":
                # The decoder itself scales by 1/2, 1/4 or 1/8: the full image never exists.
                image.draft("RGB", (max(1, image.width // factor), max(1, image.height // factor)))
            image.load()
            factor = -(-max(image.size) // WORKING_SIDE)
            if factor > 1:
                image = image.reduce(factor)
    except InvalidInput:
        raise
    except _UNREADABLE:
        # Pillow's own message names a Python object (<_io.BytesIO ...>): say what we saw.
        raise InvalidInput(
            f"{what}: cannot decode: not a readable image ({len(data)} bytes; "
            f"{_describe(data)}); send a {ACCEPTED} file"
        ) from None
    image.info["full_size"] = full_size
    return image


def orient(image: Image.Image) -> Image.Image:
    """Turn the pixels the way the EXIF Orientation tag says (phones store them sideways).

    Runs before any pixel work: every later step, and every box in an answer, is in the
    upright frame a person sees.
    """
    full_width, full_height = image.info.get("full_size", image.size)
    if not _MAY_BE_TURNED.intersection(image.info):
        return image  # no EXIF or XMP: nothing to turn (exif_transpose would parse anyway)
    turned = ImageOps.exif_transpose(image)
    if turned.size != image.size:  # a quarter turn swaps the full size too
        full_width, full_height = full_height, full_width
    turned.info["full_size"] = (full_width, full_height)
    return turned


def to_rgb(image: Image.Image) -> Decoded:
    """Float32 RGB in [0,1]; transparency is composited on white (paper)."""
    full_size = image.info.get("full_size", image.size)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    rgb = np.asarray(image, dtype=np.float32) * np.float32(1 / 255)
    return Decoded(rgb, full_size)


def decode_rgb(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> Decoded:
    """Steps 1-2 together: bounded decode, EXIF orientation, RGB floats."""
    return to_rgb(orient(open_bounded(data, what, max_pixels)))
