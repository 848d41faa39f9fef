"""Multi-digit sheets: a number of 2-6 MNIST test digits written across a sheet of paper.

Layouts: ``separated`` (gaps of 25-45 % of the digit height between the ink boxes),
``touching`` (neighbours' ink touches: each digit slides left until its ink meets the line's,
then up to 3 % of the digit height further) and
``two_line`` (the digits split over two lines; the reading order is the first line left to
right, then the second). The ground truth
is the text, the lines, and each digit's ink box in upright pixels (after EXIF orientation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evaluation.conditions import Recipe, recipe
from evaluation.geometry import (
    Glyph,
    Quad,
    box_quad,
    ink_box,
    ink_coverage,
    jitter_quad,
    rotate_quad,
    shift_quad,
)
from evaluation.photos import stream
from evaluation.render import Photo, render

# Which conditions each layout is rendered under.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "separated": ("scan", "uneven_light", "phone"),
    "touching": ("scan", "phone"),
    "two_line": ("scan", "phone"),
}
LENGTHS = (2, 3, 4, 5, 6)
SHEET_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 480), (1024, 768))


@dataclass(frozen=True)
class Sheet:
    """A rendered sheet and its ground truth."""

    layout: str
    condition: str
    index: int
    lines: tuple[tuple[Glyph, ...], ...]
    size: tuple[int, int]
    recipe: Recipe
    quads: tuple[Quad, ...]  # where each digit was drawn, in reading order
    photo: Photo

    @property
    def text(self) -> str:
        """The number in reading order (lines concatenated)."""
        return "".join(str(g.label) for line in self.lines for g in line)


def length_of(index: int) -> int:
    """How many digits sheet ``index`` holds (cycling 2..6, so every length is equally common)."""
    return LENGTHS[index % len(LENGTHS)]


def split_lines(digits: list[Glyph], layout: str) -> tuple[tuple[Glyph, ...], ...]:
    """One line, or for ``two_line`` the first ceil(n/2) digits over the rest."""
    if layout != "two_line":
        return (tuple(digits),)
    first = math.ceil(len(digits) / 2)
    return (tuple(digits[:first]), tuple(digits[first:]))


def sheet(layout: str, condition: str, index: int, digits: list[Glyph], seed: int) -> Sheet:
    """Render sheet ``index`` of ``layout`` under ``condition`` with ``digits`` in reading order."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    place = stream(seed, f"sheet-{layout}", index)
    size = SHEET_SIZES[index % len(SHEET_SIZES)]
    width, height = size
    lines = split_lines(digits, layout)

    # Per digit: height factor, gap after it (fraction of the height), vertical offset, slant.
    sizes = [place.uniform(0.9, 1.1, len(line)) for line in lines]
    if layout == "touching":
        gaps = [np.zeros(len(line)) for line in lines]
    else:
        gaps = [place.uniform(0.25, 0.45, len(line)) for line in lines]
    spans = [
        float(sum(f * g.aspect for f, g in zip(fs, line, strict=True)) + gs[:-1].sum())
        for fs, gs, line in zip(sizes, gaps, lines, strict=True)
    ]
    max_height = (0.4 if len(lines) == 1 else 0.28) * height
    digit_height = min(max_height, 0.8 * width / max(spans)) * float(place.uniform(0.8, 1.0))
    line_pitch = 1.5 * digit_height
    first_y = (
        height / 2 - line_pitch * (len(lines) - 1) / 2 + float(place.uniform(-0.04, 0.04)) * height
    )

    placed: list[tuple[Glyph, Quad]] = []
    for row, (line, fs, gs, span) in enumerate(zip(lines, sizes, gaps, spans, strict=True)):
        x = (width - span * digit_height) / 2 + float(place.uniform(-0.04, 0.04)) * width
        y = first_y + row * line_pitch
        previous_right: int | None = None
        line_ink: np.ndarray | None = None
        for g, f, gap in zip(line, fs, gs, strict=True):
            h = digit_height * f
            w = h * g.aspect
            cy = y + float(place.uniform(-0.05, 0.05)) * digit_height
            quad = rotate_quad(
                box_quad(x + w / 2, cy, w, h), float(place.uniform(-4, 4)), (x + w / 2, cy)
            )
            # Gaps are measured between the drawn ink boxes, so "separated" holds for the ink
            # itself (a whole-pixel shift moves the ink exactly).
            box = ink_box(ink_coverage(g, quad, size))
            if box is None:
                raise ValueError("a digit fell outside the frame")
            shift = (
                0
                if previous_right is None
                else round(previous_right + gap * digit_height) - box["x"]
            )
            quad = shift_quad(quad, shift)
            ink = ink_coverage(g, quad, size) > 0.5
            if layout == "touching" and line_ink is not None:
                # From boxes that meet, slide on until the inks touch, then a little further.
                slide = _slide_to_contact(line_ink, ink, round(0.3 * digit_height))
                slide += round(float(place.uniform(0.0, 0.03)) * digit_height)
                quad = shift_quad(quad, -slide)
                ink = ink_coverage(g, quad, size) > 0.5
                shift -= slide
            placed.append((g, quad))
            line_ink = ink if line_ink is None else line_ink | ink
            previous_right = box["x"] + shift + box["width"]
            x = previous_right + gap * digit_height

    rng = stream(seed, f"sheet-{layout}-{condition}", index)
    r = recipe(condition, rng, index)
    centre = (width / 2, height / 2)
    moved: list[tuple[Glyph, Quad]] = []
    for g, quad in placed:
        if r.rotation:
            # The whole sheet turns (around the frame's centre), not each digit alone.
            quad = rotate_quad(quad, r.rotation, centre)
        if r.perspective:
            quad = jitter_quad(quad, rng.uniform(-1, 1, (4, 2)) * r.perspective * digit_height)
        moved.append((g, quad))
    photo = render(r, size, moved, digit_height, rng)
    return Sheet(layout, condition, index, lines, size, r, tuple(q for _, q in moved), photo)


def _slide_to_contact(line_ink: np.ndarray, ink: np.ndarray, limit: int) -> int:
    """How far ``ink`` must move left (pixels, at most ``limit``) to touch ``line_ink``."""
    for step in range(limit + 1):
        if step == 0:
            touching = (line_ink & ink).any()
        else:
            touching = (line_ink[:, :-step] & ink[:, step:]).any()
        if touching:
            return step
    return limit
