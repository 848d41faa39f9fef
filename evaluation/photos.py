"""Single-digit photos: one MNIST test digit per frame under one condition.

Every condition renders the same digits at the same place and size (the placement stream
depends on the seed and the item only), so a condition's accuracy compares directly with the
scan's, and the ``exif`` photos are the scans' pixels exactly, only stored turned.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from evaluation.conditions import Recipe, recipe
from evaluation.geometry import Glyph, box_quad, jitter_quad, rotate_quad
from evaluation.render import Photo, render

# Frame sizes (width, height), cycled by item: phone photos scaled down and larger ones.
SIZES: tuple[tuple[int, int], ...] = ((160, 120), (160, 120), (320, 240), (640, 480))
# The digit's height as a fraction of the frame's, before the condition's scale.
_HEIGHT = (0.38, 0.55)
_MAX_HEIGHT = 0.7
_MIN_WIDTH = 2.0


def stream(seed: int, name: str, index: int) -> np.random.Generator:
    """The random stream of one item under one name: independent of every other item."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


@dataclass(frozen=True)
class SinglePhoto:
    """A rendered single-digit photo and what was done to it."""

    condition: str
    index: int
    glyph: Glyph
    size: tuple[int, int]
    recipe: Recipe
    photo: Photo


def single_photo(condition: str, index: int, g: Glyph, seed: int) -> SinglePhoto:
    """Render item ``index`` (digit ``g``) under ``condition``, deterministically from ``seed``."""
    place = stream(seed, "place", index)
    size = SIZES[index % len(SIZES)]
    width, height = size
    base = float(place.uniform(*_HEIGHT)) * height
    cx = float(place.uniform(0.4, 0.6)) * width
    cy = float(place.uniform(0.42, 0.58)) * height

    rng = stream(seed, condition, index)
    r = recipe(condition, rng, index)
    digit_height = r.digit_pixels or min(base * r.scale, _MAX_HEIGHT * height)
    # At least _MIN_WIDTH pixels wide: a "1" only a few pixels tall would otherwise be
    # thinner than one pixel and vanish (only far_away draws digits that small).
    quad = box_quad(cx, cy, max(digit_height * g.aspect, _MIN_WIDTH), digit_height)
    if r.rotation:
        quad = rotate_quad(quad, r.rotation, (cx, cy))
    if r.perspective:
        quad = jitter_quad(quad, rng.uniform(-1, 1, (4, 2)) * r.perspective * digit_height)
    photo = render(r, size, [(g, quad)], digit_height, rng)
    return SinglePhoto(condition, index, g, size, r, photo)
