"""Read a grid PNG back without any knowledge of how clients/grid.py lays it out.

Tiles are found from the pixels alone: MNIST-style images are mostly black
squares on a white page, so columns and rows of the page that are largely
black mark the tiles. The title band of a tile is the strip just above it;
it is "red" when most of its pixels are strongly red.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class FoundTile:
    """A tile located in the PNG, row-major order, and whether its band is red."""

    top: int
    left: int
    bottom: int
    right: int
    red_band: bool


def _runs(mask: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """[start, end) of each run of True at least ``min_length`` long."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [
        (int(a), int(b))
        for a, b in zip(edges[::2], edges[1::2], strict=True)
        if b - a >= min_length
    ]


def rgb(path: Path) -> np.ndarray:
    """The PNG as uint8 [H, W, 3]."""
    return np.asarray(Image.open(path).convert("RGB"))


def find_tiles(path: Path, min_side: int = 40) -> list[FoundTile]:
    """Locate the dark image squares and classify the band above each."""
    pixels = rgb(path).astype(np.int32)
    dark = pixels.max(axis=2) < 60
    height, width = dark.shape
    # A column crossing a column of tiles is dark over a large part of the page.
    columns = _runs(dark.sum(axis=0) > 0.25 * height, min_side)
    in_tile_columns = np.zeros(width, dtype=bool)
    for a, b in columns:
        in_tile_columns[a:b] = True
    rows = _runs(dark[:, in_tile_columns].mean(axis=1) > 0.3, min_side)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    tiles = []
    for top, bottom in rows:
        for left, right in columns:
            # The band sits directly on top of the image; sample a strip inside it.
            strip = red[max(0, top - 12) : max(0, top - 3), left + 5 : right - 5]
            tiles.append(
                FoundTile(top, left, bottom, right, bool(strip.size and strip.mean() > 0.5))
            )
    return tiles
