"""Render MNIST *test* digits as phone-like photos: paper, light, ink, EXIF, clutter.

Used by examples/make.py (the sample images), the preparation tests and
``python -m bench.preparation``. Small on purpose: the evaluation set with its own, wider
generator lives in the evaluation package; this one makes one picture per condition.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

# EXIF tag 0x0112 (Orientation); 6 = the stored pixels must turn 90 degrees clockwise.
ORIENTATION = 0x0112


@dataclass(frozen=True)
class Look:
    """How a photo looks; the defaults are an evenly lit scan (dark ink on white)."""

    paper: tuple[float, float, float] = (245.0, 245.0, 245.0)
    ink: tuple[float, float, float] = (20.0, 20.0, 20.0)
    # Brightness at the dark side of a left-to-right gradient (1 = even light).
    dark_side: float = 1.0
    # Depth of a soft shadow over the bottom-right corner (0 = none).
    shadow: float = 0.0
    grain: float = 0.0  # std of paper texture, grey levels
    blur: float = 0.0  # Gaussian radius of the focus blur, pixels


# The conditions the preparation must handle (issue 21), one Look each.
SCAN = Look()
UNEVEN = Look(
    paper=(236.0, 222.0, 196.0),  # warm light
    ink=(95.0, 95.0, 100.0),  # grey ink (pencil-like)
    dark_side=0.5,
    shadow=0.35,
    grain=4.0,
    blur=0.8,
)
BLUE_INK = Look(ink=(40.0, 60.0, 170.0), grain=2.0, blur=0.6)
RED_INK = Look(ink=(190.0, 40.0, 40.0), grain=2.0, blur=0.6)
PENCIL_ON_GREY = Look(paper=(170.0, 170.0, 165.0), ink=(95.0, 95.0, 95.0), grain=3.0, blur=0.6)


def ink_of(digit: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit (uint8 28x28, white on black) as ink coverage in [0,1], ``height`` tall."""
    image = Image.fromarray(np.asarray(digit, np.uint8)).resize((height, height), Image.BICUBIC)
    return np.clip(np.asarray(image, np.float32) / 255.0, 0.0, 1.0)


def place(
    inks: Sequence[np.ndarray], size: tuple[int, int], gap: float = 0.0, top: float = 0.5
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Ink images side by side on a ``size`` (width, height) page, centred as a group.

    ``gap`` is the spacing in ink heights (negative overlaps neighbours); ``top`` is the
    vertical centre as a fraction of the page. Returns the page and each ink's tight box
    (x, y, width, height) in page pixels.
    """
    width, height = size
    page = np.zeros((height, width), np.float32)
    step = [ink.shape[1] for ink in inks]
    spacing = round(gap * max(ink.shape[0] for ink in inks))
    total = sum(step) + spacing * (len(inks) - 1)
    x = (width - total) // 2
    boxes = []
    for ink in inks:
        h, w = ink.shape
        y = round(top * height - h / 2)
        region = page[y : y + h, x : x + w]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
        rows, cols = np.nonzero(ink > 0.3)
        boxes.append(
            (x + int(cols.min()), y + int(rows.min()), int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1)
        )
        x += w + spacing
    return page, boxes


def photo(ink: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage [H,W] in [0,1] as an RGB uint8 photo of pen on paper under ``look``."""
    h, w = ink.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - (1.0 - look.dark_side) * (1.0 - cols / max(1, w - 1))
    if look.shadow:
        # A soft-edged shadow (e.g. the phone's) over the bottom-right corner.
        edge = (cols / w + rows / h - 1.25) * 8.0
        light = light * (1.0 - look.shadow / (1.0 + np.exp(-edge)))
    paper = np.asarray(look.paper, np.float32)
    if look.grain:
        noise = Image.fromarray(rng.uniform(0, 255, (h, w)).astype(np.uint8))
        texture = np.asarray(noise.filter(ImageFilter.GaussianBlur(1.0)), np.float32)
        texture = (texture - texture.mean()) / (texture.std() + 1e-6)
        paper = paper + look.grain * texture[..., None]
    alpha = ink
    if look.blur:
        blurred = Image.fromarray((ink * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(look.blur)
        )
        alpha = np.asarray(blurred, np.float32) / 255.0
    alpha = alpha[..., None]
    rgb = ((1 - alpha) * paper + alpha * np.asarray(look.ink, np.float32)) * light[..., None]
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def specks_and_lines(rgb: np.ndarray, rng: np.random.Generator, ruled: bool = True) -> np.ndarray:
    """Clutter a photo: a few dark specks, blue ruled lines and a dark sheet edge at the left."""
    out = rgb.astype(np.float32)
    h, w = out.shape[:2]
    if ruled:
        for y in range(h // 8, h, max(6, h // 5)):
            out[y : y + max(1, h // 120)] *= np.array([0.75, 0.8, 0.95], np.float32)
    for _ in range(5):
        y, x = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
        r = max(1, h // 100)
        out[y : y + r, x : x + r] = 30
    # The table under the sheet shows along the left edge.
    out[:, : max(2, w // 40)] = 60
    return np.clip(out, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str = "JPEG", orientation: int = 1, quality: int = 85) -> bytes:
    """An upright image encoded as a phone stores it.

    ``orientation`` 6 stores the pixels turned a quarter (counter-clockwise) with the EXIF tag
    that tells a viewer to turn them back; 3 stores them upside down, 8 turned the other way.
    """
    image = Image.fromarray(rgb)
    turn = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90}
    turn[8] = Image.Transpose.ROTATE_270
    if turn[orientation] is not None:
        image = image.transpose(turn[orientation])
    exif = Image.Exif()
    if orientation != 1:
        exif[ORIENTATION] = orientation
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=quality, exif=exif)
    else:
        image.save(buffer, format="PNG", exif=exif)
    return buffer.getvalue()


def scan_png(digit: np.ndarray) -> bytes:
    """An MNIST digit as a plain 28x28 scan: dark ink on white, PNG."""
    return encode(255 - np.repeat(np.asarray(digit, np.uint8)[..., None], 3, axis=2), "PNG")


def digit_photo(
    digit: np.ndarray,
    look: Look,
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 120),
    fill: float = 0.6,
) -> np.ndarray:
    """One MNIST digit photographed on a ``size`` page (its height ``fill`` of the page)."""
    page, _ = place([ink_of(digit, round(size[1] * fill))], size)
    return photo(page, look, rng)


def number_photo(
    digits: Sequence[np.ndarray],
    look: Look,
    rng: np.random.Generator,
    height: int = 48,
    gap: float = 0.25,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Several MNIST digits in a row, photographed; returns the photo and each digit's box."""
    inks = [trim_columns(ink_of(d, height)) for d in digits]
    width = sum(i.shape[1] for i in inks) + round(gap * height) * len(inks) + height
    page, boxes = place(inks, (max(width, 2 * height), 2 * height), gap)
    return photo(page, look, rng), boxes


def trim_columns(ink: np.ndarray) -> np.ndarray:
    """Ink without its empty side columns (MNIST's 28x28 field pads narrow digits like 1)."""
    cols = np.nonzero(ink.max(axis=0) > 0.05)[0]
    return ink[:, cols.min() : cols.max() + 1] if cols.size else ink
