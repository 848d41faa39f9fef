"""Scripted pen strokes for the ten digits, drawn the way a person draws on a canvas.

Each digit has one or more styles (a 1 with or without a flag, a 7 with or without a bar, an
open or closed 4...). A style is a list of strokes; a stroke is a polyline in a unit box
(x right, y down). :func:`draw_digit` jitters the points, applies a random slant, rotation and
aspect, and draws the strokes with a round pen, anti-aliased, onto a square canvas.

This is synthetic data: the shapes are written by hand here, not recorded from people.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["STYLES", "draw_digit"]

Stroke = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Stroke:
    """Points on an ellipse from angle ``start`` to ``end`` (degrees; y down, so increasing
    angles turn clockwise on screen)."""
    steps = max(8, int(abs(end - start) / 10))
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, steps)
    ]


STYLES: dict[int, list[list[Stroke]]] = {
    0: [
        [_arc(0.5, 0.5, 0.34, 0.47, -90, 275)],
        [_arc(0.5, 0.5, 0.3, 0.47, -80, 290)],
    ],
    1: [
        [[(0.52, 0.03), (0.48, 0.97)]],
        [[(0.25, 0.3), (0.55, 0.03), (0.55, 0.97)]],
        [[(0.3, 0.25), (0.55, 0.03), (0.55, 0.97)], [(0.3, 0.97), (0.8, 0.97)]],
    ],
    2: [
        [[*_arc(0.5, 0.3, 0.33, 0.26, 190, 390), (0.15, 0.96), (0.88, 0.95)]],
        [[*_arc(0.48, 0.28, 0.3, 0.24, 200, 380), (0.4, 0.7), (0.12, 0.95), (0.9, 0.93)]],
    ],
    3: [
        [_arc(0.5, 0.27, 0.3, 0.22, 200, 450) + _arc(0.5, 0.72, 0.34, 0.25, 270, 520)],
        [[(0.15, 0.05), (0.8, 0.05), (0.45, 0.42), *_arc(0.5, 0.7, 0.33, 0.27, 260, 510)]],
    ],
    4: [
        [[(0.68, 0.97), (0.68, 0.03), (0.08, 0.68), (0.92, 0.68)]],
        [[(0.18, 0.03), (0.12, 0.6), (0.88, 0.6)], [(0.66, 0.25), (0.66, 0.97)]],
    ],
    5: [
        [[(0.82, 0.05), (0.25, 0.05), (0.2, 0.45), *_arc(0.48, 0.66, 0.34, 0.29, 215, 520)]],
        [
            [(0.25, 0.05), (0.2, 0.45), *_arc(0.48, 0.66, 0.34, 0.29, 215, 520)],
            [(0.25, 0.05), (0.85, 0.03)],
        ],
    ],
    6: [
        [[(0.75, 0.04), (0.45, 0.2), (0.25, 0.45), *_arc(0.5, 0.7, 0.28, 0.26, 180, -175)]],
        [[(0.65, 0.03), (0.3, 0.4), *_arc(0.5, 0.72, 0.3, 0.24, 200, -150)]],
    ],
    7: [
        [[(0.1, 0.05), (0.9, 0.05), (0.38, 0.97)]],
        [[(0.1, 0.12), (0.12, 0.05), (0.9, 0.05), (0.4, 0.97)], [(0.35, 0.5), (0.8, 0.5)]],
    ],
    8: [
        [_arc(0.5, 0.27, 0.25, 0.22, 0, 360), _arc(0.5, 0.72, 0.32, 0.26, -90, 270)],
        [
            [
                *_arc(0.5, 0.26, 0.26, 0.22, 30, -210),
                *_arc(0.5, 0.72, 0.33, 0.26, -100, 240),
                (0.75, 0.12),
            ]
        ],
    ],
    9: [
        [_arc(0.45, 0.3, 0.3, 0.25, 0, 365), [(0.75, 0.3), (0.7, 0.97)]],
        [
            [
                *_arc(0.48, 0.3, 0.3, 0.25, 10, -360),
                (0.78, 0.6),
                *_arc(0.55, 0.75, 0.23, 0.22, 0, 120),
            ]
        ],
    ],
}


def draw_digit(
    digit: int, rng: np.random.Generator, size: int = 280, width: float | None = None
) -> np.ndarray:
    """Ink coverage [size,size] float32 in [0,1] of one randomly varied ``digit``.

    ``width`` is the pen width in canvas pixels (random between 4% and 11% of the canvas
    if None). Drawn at 2x and downsampled, as a browser's anti-aliased canvas would look.
    """
    styles = STYLES[digit]
    strokes = styles[int(rng.integers(len(styles)))]
    scale = 2
    canvas = size * scale
    width = float(rng.uniform(0.04, 0.11) * size) if width is None else width
    # A random slant, rotation and aspect around the box centre, then a size and position.
    shear = rng.uniform(-0.35, 0.25)
    angle = math.radians(rng.uniform(-12, 12))
    aspect = rng.uniform(0.7, 1.25)
    height = rng.uniform(0.45, 0.8) * canvas
    centre = canvas / 2 + rng.uniform(-0.1, 0.1, size=2) * canvas
    cos, sin = math.cos(angle), math.sin(angle)
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    pen = width * scale
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64)
        # A wobble that is smooth along the stroke, like a hand rather than pixel noise.
        wobble = np.cumsum(rng.normal(0, 0.012, size=points.shape), axis=0)
        points = points + wobble - wobble.mean(axis=0) + rng.normal(0, 0.02, size=2)
        u, v = (points[:, 0] - 0.5) * aspect, points[:, 1] - 0.5
        u = u - shear * v
        x = (cos * u - sin * v) * height + centre[0]
        y = (sin * u + cos * v) * height + centre[1]
        xy = list(zip(x.tolist(), y.tolist(), strict=True))
        draw.line(xy, fill=255, width=max(1, round(pen)), joint="curve")
        for px, py in (xy[0], xy[-1]):  # round caps at both ends
            draw.ellipse([px - pen / 2, py - pen / 2, px + pen / 2, py + pen / 2], fill=255)
    small = image.resize((size, size), Image.LANCZOS)
    return np.asarray(small, dtype=np.float32) / 255.0
