"""Steps 5-6: which pixels are ink (Otsu on the flattened image), and their connected parts.

Long straight runs (ruled or squared paper, the sheet's edge) are taken out of the ink mask
before the parts are labelled, so they neither join digits together nor widen a crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from serving.errors import InvalidInput

_BINS = 128
# Otsu on clean paper with JPEG noise only can split the noise: a threshold below this is
# no ink/paper boundary.
MIN_LEVEL = 0.12
# Ink must differ from paper by this much (class means after Otsu) or there is no digit.
MIN_CONTRAST = 0.2
# A straight run at least this share of the image's width (height) is a line, not a stroke.
LINE_FRACTION = 0.75
_EIGHT = np.ones((3, 3), dtype=bool)


def otsu_level(ink: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold of ``ink`` in [0,1], and the gap between the two class means."""
    hist = np.bincount((ink.ravel() * (_BINS - 1)).astype(np.intp), minlength=_BINS)
    hist = hist.astype(np.float64)
    centres = np.arange(_BINS) / (_BINS - 1)
    weight = np.cumsum(hist)
    total = weight[-1]
    mass = np.cumsum(hist * centres)
    below, above = weight[:-1], total - weight[:-1]
    valid = (below > 0) & (above > 0)
    if not valid.any():
        return 1.0, 0.0
    mean_below = np.where(valid, mass[:-1] / np.maximum(below, 1), 0)
    mean_above = np.where(valid, (mass[-1] - mass[:-1]) / np.maximum(above, 1), 0)
    between = np.where(valid, below * above * (mean_above - mean_below) ** 2, -1)
    best = int(np.argmax(between))
    return float(centres[best] + 0.5 / (_BINS - 1)), float(mean_above[best] - mean_below[best])


def threshold(ink: np.ndarray, what: str = "image") -> np.ndarray:
    """The ink mask: pixels above Otsu's level of the flattened image.

    A thin digit on a large sheet is a few percent of the pixels, and Otsu then splits the
    paper's grain instead; while the two classes barely differ, Otsu is run again on the
    upper class alone. Raises InvalidInput when nothing stands out from the paper.
    """
    values = ink.ravel()
    level = 0.0
    for _ in range(3):
        level, _ = otsu_level(values)
        above = ink > max(level, MIN_LEVEL)
        if above.any() and not above.all():
            gap = float(ink[above].mean()) - float(ink[~above].mean())
            if gap >= MIN_CONTRAST:
                return above
        values = values[values > level]
        if values.size < 2:
            break
    raise InvalidInput(f"{what}: no digit found (the image is blank or has no contrast)")


def _runs(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Pixels of ``mask`` on straight runs of at least ``length`` along ``axis`` (a binary
    opening with a line; the 1-D min/max filters cost the same for any length)."""
    # A slightly tilted thin line breaks into short runs: thicken across the line first.
    thick = ndimage.maximum_filter1d(mask, 3, axis=1 - axis)
    opened = ndimage.maximum_filter1d(
        ndimage.minimum_filter1d(thick, length, axis=axis), length, axis=axis
    )
    return opened & mask


def _thicker_than(mask: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Pixels of ``mask`` on runs longer than ``width`` along ``axis``."""
    return ndimage.maximum_filter1d(
        ndimage.minimum_filter1d(mask, width + 1, axis=axis), width + 1, axis=axis
    )


def remove_lines(mask: np.ndarray) -> np.ndarray:
    """``mask`` without thin straight lines spanning most of the image (ruled or squared
    paper). A pen stroke is thicker than such a line, so a long stroke (a tall 1 filling a
    scan) stays, and so does a stroke's ink where it crosses a line."""
    height, width = mask.shape
    # Cheap test first: a line that spans the image fills at least a quarter of some row or
    # column (tilted lines included); most images have none.
    wide = mask.sum(axis=1).max() >= width // 4 or mask.sum(axis=0).max() >= height // 4
    if not wide:
        return mask
    thin = max(2, min(height, width) // 40)
    lines = _runs(mask, max(8, int(LINE_FRACTION * width)), axis=1)
    lines &= ~_thicker_than(mask, thin, axis=0)
    vertical = _runs(mask, max(8, int(LINE_FRACTION * height)), axis=0)
    lines |= vertical & ~_thicker_than(mask, thin, axis=1)
    return mask & ~lines if lines.any() else mask


@dataclass(frozen=True, slots=True)
class Part:
    """One connected group of ink pixels: its label in the label image and its box."""

    label: int
    top: int
    left: int
    bottom: int  # exclusive
    right: int  # exclusive
    area: int

    @property
    def height(self) -> int:
        """Box height in pixels."""
        return self.bottom - self.top

    @property
    def width(self) -> int:
        """Box width in pixels."""
        return self.right - self.left

    def touches_border(self, shape: tuple[int, ...]) -> bool:
        """Whether the box reaches an edge of an image of ``shape``."""
        return self.top == 0 or self.left == 0 or self.bottom == shape[0] or self.right == shape[1]


def components(mask: np.ndarray) -> tuple[np.ndarray, list[Part]]:
    """Label 8-connected ink parts; returns the label image and the parts, largest first."""
    labels, count = ndimage.label(mask, structure=_EIGHT)
    if count == 0:
        return labels, []
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    parts = [
        Part(index + 1, box[0].start, box[1].start, box[0].stop, box[1].stop, int(areas[index + 1]))
        for index, box in enumerate(ndimage.find_objects(labels))
        if box is not None
    ]
    parts.sort(key=lambda p: -p.area)
    return labels, parts
