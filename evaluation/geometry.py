"""Where a digit lands in the frame: quads, homographies and the pen-like ink coverage.

A digit is an MNIST test image cropped to its ink, mapped onto a quadrilateral of the frame
(a rotated, scaled, perspective-jittered rectangle) in one Pillow perspective resampling, and
turned into pen ink by a soft threshold: MNIST strokes are blurry grey ramps at 28x28, a pen
stroke is solid with a thin anti-aliased edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]  # top-left, top-right, bottom-right, bottom-left

# MNIST pixels above this (of 255) count as the digit's ink when cropping.
_GLYPH_THRESHOLD = 40
# The soft threshold that makes pen ink out of MNIST's grey ramps (of 1.0). Low enough that
# MNIST's faint joins (the top bar of some 5s, the corner of an open 4) stay joined.
_PEN_LOW, _PEN_HIGH = 0.1, 0.45


@dataclass(frozen=True)
class Glyph:
    """One MNIST test digit cropped to its ink (uint8, white ink on black)."""

    pixels: np.ndarray
    label: int
    mnist_index: int

    @property
    def aspect(self) -> float:
        """Width over height of the ink box."""
        height, width = self.pixels.shape
        return width / height


def glyph(image: np.ndarray, label: int, mnist_index: int) -> Glyph:
    """Crop a 28x28 MNIST image to the rows and columns that hold ink."""
    ys, xs = np.nonzero(image > _GLYPH_THRESHOLD)
    crop = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return Glyph(np.ascontiguousarray(crop), int(label), int(mnist_index))


def box_quad(cx: float, cy: float, width: float, height: float) -> Quad:
    """The axis-aligned rectangle centred on (cx, cy)."""
    x0, x1 = cx - width / 2, cx + width / 2
    y0, y1 = cy - height / 2, cy + height / 2
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def rotate_quad(quad: Quad, degrees: float, centre: Point) -> Quad:
    """Rotate every corner by ``degrees`` (counter-clockwise as seen) around ``centre``."""
    angle = math.radians(-degrees)  # image y points down
    cos, sin = math.cos(angle), math.sin(angle)
    cx, cy = centre
    return tuple(  # type: ignore[return-value]
        (cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos)
        for x, y in quad
    )


def jitter_quad(quad: Quad, offsets: np.ndarray) -> Quad:
    """Move each corner by its own (dx, dy) row of ``offsets`` [4,2]: a perspective look."""
    return tuple(  # type: ignore[return-value]
        (x + float(dx), y + float(dy)) for (x, y), (dx, dy) in zip(quad, offsets, strict=True)
    )


def shift_quad(quad: Quad, dx: float, dy: float = 0.0) -> Quad:
    """Move every corner by (dx, dy)."""
    return tuple((x + dx, y + dy) for x, y in quad)  # type: ignore[return-value]


def homography(source: Quad, target: Quad) -> tuple[float, ...]:
    """Pillow PERSPECTIVE coefficients mapping ``target`` (output) points to ``source`` points.

    Solves the eight unknowns of x = (a u + b v + c) / (g u + h v + 1),
    y = (d u + e v + f) / (g u + h v + 1) from the four corner pairs.
    """
    rows, rhs = [], []
    for (x, y), (u, v) in zip(source, target, strict=True):
        rows.append([u, v, 1, 0, 0, 0, -u * x, -v * x])
        rows.append([0, 0, 0, u, v, 1, -u * y, -v * y])
        rhs.extend([x, y])
    solution = np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs))
    return tuple(float(c) for c in solution)


def ink_coverage(g: Glyph, quad: Quad, size: tuple[int, int]) -> np.ndarray:
    """Pen ink coverage in [0,1], float32 [H,W], of ``g`` drawn onto ``quad`` of a frame."""
    height, width = g.pixels.shape
    source: Quad = ((0, 0), (width, 0), (width, height), (0, height))
    warped = Image.fromarray(g.pixels).transform(
        size, Image.Transform.PERSPECTIVE, homography(source, quad), Image.Resampling.BICUBIC
    )
    grey = np.asarray(warped, dtype=np.float32) / 255.0
    return smoothstep(grey, _PEN_LOW, _PEN_HIGH)


def smoothstep(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 below ``low``, 1 above ``high``, a smooth cubic in between (float32)."""
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def ink_box(coverage: np.ndarray, level: float = 0.5) -> dict[str, int] | None:
    """The pixel box ``{x, y, width, height}`` of coverage above ``level`` (None if empty)."""
    ys, xs = np.nonzero(coverage > level)
    if ys.size == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    return {"x": x0, "y": y0, "width": int(xs.max()) - x0 + 1, "height": int(ys.max()) - y0 + 1}
