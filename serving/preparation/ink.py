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


_CENTRES = (np.arange(_BINS) + 0.5) / _BINS


def _histogram(ink: np.ndarray) -> np.ndarray:
    """Counts of ``ink`` values in _BINS equal bins over [0,1]."""
    bins = np.minimum((ink.ravel() * _BINS).astype(np.intp), _BINS - 1)
    return np.bincount(bins, minlength=_BINS).astype(np.float64)


def otsu_bin(hist: np.ndarray, start: int = 0) -> int:
    """Otsu's split of the histogram's bins from ``start`` on: the first bin of the upper
    class (the one maximising the between-class variance)."""
    counts = hist[start:]
    if counts.size < 2:
        return start
    weighted = counts * _CENTRES[start:]
    below = np.cumsum(counts)[:-1]
    above = counts.sum() - below
    mass_below = np.cumsum(weighted)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = mass_below / below - (weighted.sum() - mass_below) / above
        between = np.where((below > 0) & (above > 0), below * above * gap * gap, -1.0)
    return start + int(np.argmax(between)) + 1


def _class_gap(hist: np.ndarray, split: int) -> float:
    """Mean ink of the bins from ``split`` on minus that of the bins below it."""
    low, high = hist[:split], hist[split:]
    if low.sum() == 0 or high.sum() == 0:
        return 0.0
    return float(high @ _CENTRES[split:] / high.sum() - low @ _CENTRES[:split] / low.sum())


def threshold(ink: np.ndarray, what: str = "image") -> np.ndarray:
    """The ink mask: pixels above Otsu's level of the flattened image.

    A thin digit on a large sheet is a few percent of the pixels, and Otsu then splits the
    paper's grain instead; while the two classes barely differ, Otsu is run again on the
    upper class alone. Raises InvalidInput when nothing stands out from the paper.
    """
    hist = _histogram(ink)
    floor = int(MIN_LEVEL * _BINS)
    start = 0
    for _ in range(3):
        split = max(otsu_bin(hist, start), floor)
        if _class_gap(hist, split) >= MIN_CONTRAST:
            return ink >= split / _BINS
        start = split
        if start >= _BINS - 1:
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
    thin = max(2, min(height, width) // 40)
    lines = np.zeros_like(mask)
    for axis, length in (
        (1, max(8, int(LINE_FRACTION * width))),
        (0, max(8, int(LINE_FRACTION * height))),
    ):
        # Cheap necessary condition first: a run of ``length`` in the mask thickened by 3
        # across the line fills at least ``length`` of some row (column). Most images have
        # none, and the filters below are then skipped.
        across = np.moveaxis(mask, 1 - axis, 0)
        thick = across[:-2] | across[1:-1] | across[2:] if across.shape[0] > 2 else across
        if thick.sum(axis=1).max() < length:
            continue
        lines |= _runs(mask, length, axis) & ~_thicker_than(mask, thin, axis=1 - axis)
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
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    labels = np.zeros(mask.shape, np.int32)
    if rows.size == 0:
        return labels, []
    # Label only the box around the ink: on a photo it is a small part of the image.
    top, left = int(rows[0]), int(cols[0])
    box = (slice(top, int(rows[-1]) + 1), slice(left, int(cols[-1]) + 1))
    count = ndimage.label(mask[box], structure=_EIGHT, output=labels[box])
    areas = np.bincount(labels[box].ravel(), minlength=count + 1)
    parts = [
        Part(
            index + 1,
            top + found[0].start,
            left + found[1].start,
            top + found[0].stop,
            left + found[1].stop,
            int(areas[index + 1]),
        )
        for index, found in enumerate(ndimage.find_objects(labels[box]))
        if found is not None
    ]
    parts.sort(key=lambda p: -p.area)
    return labels, parts
