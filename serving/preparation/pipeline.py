"""The steps in order: encoded photo -> one MNIST digit (classify) or every digit (read).

decode (bounded) -> orient (EXIF) -> light paper -> grey -> flatten light -> threshold
(Otsu) -> remove lines -> connected parts -> choose or segment digits -> MNIST 28x28.
Each step is a plain function of its own module; ``trace`` collects what each produced (the
debug view and the tests look at the same arrays the answer came from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.errors import InvalidInput
from serving.preparation.decode import MAX_PIXELS, Decoded, decode_rgb
from serving.preparation.digits import Region, choose_digit, segment
from serving.preparation.ink import components, remove_lines, threshold
from serving.preparation.light import flatten, grey, light_paper
from serving.preparation.mnist import digit_ink, to_field

Trace = dict[str, np.ndarray]
Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True, slots=True)
class Reading:
    """The digits found in one image, in reading order.

    ``images`` is float32 [N,28,28]; ``boxes`` are (x, y, width, height) in the input's
    pixels after EXIF orientation; ``lines`` is each digit's text line (0 = top).
    """

    images: np.ndarray
    boxes: list[Box]
    lines: list[int]


def ink_of(image: np.ndarray, trace: Trace | None = None) -> np.ndarray:
    """RGB or grey [0,1] -> ink darkness in [0,1] with the light flattened (steps 3-4)."""
    paper = light_paper(image)
    grey_image = grey(paper)
    ink = flatten(grey_image)
    if trace is not None:
        trace["grey"] = grey_image
        trace["ink"] = ink
    return ink


def _parts(ink: np.ndarray, what: str, trace: Trace | None) -> tuple[np.ndarray, list]:
    mask = remove_lines(threshold(ink, what))
    labels, parts = components(mask)
    if trace is not None:
        trace["mask"] = mask
        trace["labels"] = labels
    if not parts:
        raise InvalidInput(f"{what}: no digit found (the image is blank or has no contrast)")
    return labels, parts


def _field(ink: np.ndarray, labels: np.ndarray, region: Region) -> np.ndarray:
    box = ink[region.top : region.bottom, region.left : region.right]
    return to_field(digit_ink(box, region.mask(labels)))


def digit_of(image: np.ndarray, what: str = "image", trace: Trace | None = None) -> np.ndarray:
    """One digit's MNIST image from an RGB or grey [0,1] image (steps 3-8)."""
    if image.ndim not in (2, 3) or image.size == 0:
        raise InvalidInput(f"{what}: expected a 2-D image")
    ink = ink_of(image, trace)
    labels, parts = _parts(ink, what, trace)
    region = choose_digit(parts, labels.shape)
    if region is None:
        raise InvalidInput(f"{what}: no digit found (only specks)")
    field = _field(ink, labels, region)
    if trace is not None:
        trace["prepared"] = field
    return field


def prepare(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One encoded image -> an MNIST-style float32 [28,28] image of its digit."""
    return digit_of(decode_rgb(data, what, max_pixels).rgb, what)


def prepare_encoded(images: list[bytes], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode and prepare several encoded images into a float32 [N,28,28] batch."""
    batch = np.empty((len(images), 28, 28), dtype=np.float32)
    for index, data in enumerate(images):
        batch[index] = prepare(data, f"image {index}", max_pixels)
    return batch


def read_decoded(decoded: Decoded, what: str = "image", trace: Trace | None = None) -> Reading:
    """Every digit of an upright decoded image, in reading order (steps 3-8)."""
    ink = ink_of(decoded.rgb, trace)
    labels, parts = _parts(ink, what, trace)
    regions = segment(parts, labels)
    if not regions:
        raise InvalidInput(f"{what}: no digit found (only specks)")
    sx, sy = decoded.scale
    boxes = [
        (
            round(r.left * sx),
            round(r.top * sy),
            max(1, round((r.right - r.left) * sx)),
            max(1, round((r.bottom - r.top) * sy)),
        )
        for r in regions
    ]
    images = np.stack([_field(ink, labels, r) for r in regions])
    return Reading(images, boxes, [r.line for r in regions])


def read(data: bytes, what: str = "image", max_pixels: int = MAX_PIXELS) -> Reading:
    """Every digit of one encoded image (a number, a year, a meter reading)."""
    return read_decoded(decode_rgb(data, what, max_pixels), what)
