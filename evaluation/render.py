"""Render one photo: a recipe, a frame size and the digits' quads -> JPEG bytes and boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation import paper
from evaluation.conditions import Recipe
from evaluation.geometry import Glyph, Quad, ink_box, ink_coverage

RULED_BLUE: paper.RGB = (0.55, 0.70, 0.92)
MARGIN_RED: paper.RGB = (0.90, 0.45, 0.45)
GRID_BLUE: paper.RGB = (0.62, 0.72, 0.86)


@dataclass(frozen=True)
class Photo:
    """A rendered photo: the JPEG as stored, the upright pixels and each digit's ink box."""

    jpeg: bytes
    upright: np.ndarray  # uint8 [H,W,3], before JPEG, as a correct reader shows it
    boxes: list[dict[str, int]]  # per digit, upright pixels, ink coverage above 0.5


def render(
    recipe: Recipe,
    size: tuple[int, int],
    digits: list[tuple[Glyph, Quad]],
    digit_height: float,
    rng: np.random.Generator,
) -> Photo:
    """Draw ``digits`` (glyph, target quad) on paper under ``recipe``; see :mod:`paper`."""
    width, height = size
    scale = height / 120.0
    coverages = [ink_coverage(g, quad, size) for g, quad in digits]
    boxes = [ink_box(c) for c in coverages]
    if any(b is None for b in boxes):
        raise ValueError("a digit fell outside the frame")
    union = _union([b for b in boxes if b is not None])

    image = paper.sheet(size, recipe.paper)
    if recipe.grain:
        paper.grain(image, rng, recipe.grain, scale)
    if recipe.ruled:
        spacing = recipe.ruled * digit_height
        base = union["y"] + union["height"] + 0.06 * digit_height
        positions = base + spacing * np.arange(-20, 21)
        paper.lines(
            image, positions[(positions > 0) & (positions < height)], 1.3 * scale, RULED_BLUE
        )
        margin = min(0.1 * width, union["x"] - 0.15 * digit_height)
        if recipe.margin_line and margin > 3:
            paper.lines(image, np.asarray([margin]), 1.3 * scale, MARGIN_RED, vertical=True)
    if recipe.squared:
        spacing = recipe.squared * digit_height
        for vertical, extent in ((False, height), (True, width)):
            positions = rng.uniform(0, spacing) + spacing * np.arange(extent / spacing + 1)
            paper.lines(image, positions, 0.9 * scale, GRID_BLUE, vertical=vertical)
    if recipe.specks:
        _specks(image, rng, recipe.specks, union, digit_height, scale)

    coverage = np.max(np.stack(coverages), axis=0)
    if recipe.pencil:
        # Graphite leaves the paper's tooth showing: strokes cover 50-100 %, speckled.
        tooth = np.clip(0.75 + 0.5 * paper.smooth_field(rng, size, 0.8 * scale), 0.5, 1.0)
        coverage = coverage * tooth.astype(np.float32)
    paper.ink(image, coverage, recipe.ink)

    for side, depth, tilt in recipe.edges:
        extent = width if side in ("left", "right") else height
        paper.edge(image, side, depth * extent, tilt, recipe.table, shadow=0.25)
    if recipe.light_low < 1.0 or recipe.shadow > 0.0:
        light = paper.illumination(
            size, recipe.light_low, recipe.light_angle, recipe.shadow, recipe.shadow_angle
        )
        image *= light[..., None]
    if recipe.cast != (1.0, 1.0, 1.0):
        image *= np.asarray(recipe.cast, np.float32)
    if recipe.defocus:
        image = paper.defocus(image, recipe.defocus * digit_height)
    if recipe.motion:
        image = paper.motion(image, recipe.motion * digit_height, recipe.motion_angle)
    if recipe.noise:
        paper.sensor_noise(image, rng, recipe.noise)
    upright = paper.to_uint8(image)
    jpeg = paper.encode_jpeg(upright, recipe.jpeg_quality, recipe.orientation)
    return Photo(jpeg=jpeg, upright=upright, boxes=[b for b in boxes if b is not None])


def _union(boxes: list[dict[str, int]]) -> dict[str, int]:
    x0 = min(b["x"] for b in boxes)
    y0 = min(b["y"] for b in boxes)
    x1 = max(b["x"] + b["width"] for b in boxes)
    y1 = max(b["y"] + b["height"] for b in boxes)
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def _specks(
    image: np.ndarray,
    rng: np.random.Generator,
    count: int,
    union: dict[str, int],
    digit_height: float,
    scale: float,
) -> None:
    """Dark specks anywhere except on or next to the digits (they must not change the label)."""
    height, width = image.shape[:2]
    margin = 0.15 * digit_height
    x0, y0 = union["x"] - margin, union["y"] - margin
    x1, y1 = union["x"] + union["width"] + margin, union["y"] + union["height"] + margin
    centres: list[tuple[float, float]] = []
    for _ in range(count * 20):
        if len(centres) == count:
            break
        x, y = float(rng.uniform(2, width - 2)), float(rng.uniform(2, height - 2))
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            centres.append((x, y))
    radii = rng.uniform(0.6, 2.4, len(centres)) * scale
    levels = rng.uniform(0.08, 0.45, len(centres))
    colours = np.repeat(levels[:, None], 3, axis=1)
    paper.discs(image, np.asarray(centres).reshape(-1, 2), radii, colours)
