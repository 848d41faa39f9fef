"""Draw classified digits as a grid of tiles: pure drawing, no server, no network.

Each tile is the 28x28 image with a title band above it holding the predicted
label. A wrong prediction reads ``pred(true)`` in white on a red band, so
mistakes stand out at a glance. The layout is computed here in inches rather
than left to matplotlib's automatic spacing, so :func:`draw_grid` can return
exactly where every tile landed in the PNG (tests and tools check pixels there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

# Agg renders to files without a display; set before pyplot is imported anywhere.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

WRONG_COLOR = "#d40000"
RIGHT_COLOR = "#ffffff"
COLUMNS = 5
DPI = 100
# Inches: image side, title band height, gaps, figure header for the title.
_TILE = 1.0
_BAND = 0.28
_GAP_X = 0.2
_GAP_Y = 0.16
_MARGIN = 0.25
_HEADER = 0.75


@dataclass(frozen=True)
class Box:
    """A pixel rectangle in the saved PNG: columns [left, right), rows [top, bottom)."""

    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class Tile:
    """Where one image and its title band are in the PNG, and what the band says."""

    index: int
    image: Box
    band: Box
    text: str
    wrong: bool


@dataclass(frozen=True)
class GridLayout:
    """The saved PNG's size and every tile's geometry."""

    width: int
    height: int
    tiles: tuple[Tile, ...]


def tile_text(predicted: str, truth: str | None) -> tuple[str, bool]:
    """The band text and whether it marks a mistake: ``"3"`` or ``"3(5)"``."""
    if truth is None or predicted == truth:
        return predicted, False
    return f"{predicted}({truth})", True


def _pixel_box(x: float, y: float, w: float, h: float, fig_h: float) -> Box:
    # Figure inches have their origin bottom-left; PNG rows count from the top.
    return Box(
        round(x * DPI),
        round((fig_h - y - h) * DPI),
        round((x + w) * DPI),
        round((fig_h - y) * DPI),
    )


def draw_grid(
    images: np.ndarray,
    predicted: Sequence[str],
    truth: Sequence[str] | None,
    title: str,
    out: Path,
    columns: int = COLUMNS,
) -> GridLayout:
    """Render ``images`` ([N,28,28], uint8 0..255 or float 0..1) with their labels to ``out``.

    ``predicted[i]`` titles tile i; when ``truth`` is given, a tile whose
    prediction differs from ``truth[i]`` is titled ``pred(true)`` on a red band.
    Tiles run left to right, ``columns`` per row. Returns the tile geometry in
    PNG pixels.
    """
    images = np.asarray(images)
    count = images.shape[0]
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must be [N,28,28], got {list(images.shape)}")
    if len(predicted) != count or (truth is not None and len(truth) != count):
        raise ValueError("one predicted (and true) label per image is needed")
    vmax = 255 if images.dtype == np.uint8 else 1.0
    rows = max(1, -(-count // columns))
    cell_w, cell_h = _TILE + _GAP_X, _TILE + _BAND + _GAP_Y
    fig_w = 2 * _MARGIN + columns * cell_w - _GAP_X
    fig_h = _MARGIN + _HEADER + rows * cell_h - _GAP_Y
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=DPI, facecolor="white")
    fig.text(0.5, 1 - (_MARGIN * 0.6) / fig_h, title, ha="center", va="top", fontsize=11, wrap=True)
    tiles = []
    try:
        for i in range(count):
            row, col = divmod(i, columns)
            x = _MARGIN + col * cell_w
            image_y = fig_h - _HEADER - row * cell_h - _BAND - _TILE
            band_y = image_y + _TILE
            text, wrong = tile_text(predicted[i], None if truth is None else truth[i])

            ax = fig.add_axes((x / fig_w, image_y / fig_h, _TILE / fig_w, _TILE / fig_h))
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_axis_off()

            band = fig.add_axes((x / fig_w, band_y / fig_h, _TILE / fig_w, _BAND / fig_h))
            band.set_facecolor(WRONG_COLOR if wrong else RIGHT_COLOR)
            band.set_xticks([])
            band.set_yticks([])
            for spine in band.spines.values():
                spine.set_visible(False)
            band.text(
                0.5,
                0.5,
                text,
                ha="center",
                va="center",
                fontsize=11,
                fontweight="bold" if wrong else "normal",
                color="white" if wrong else "black",
                transform=band.transAxes,
            )
            tiles.append(
                Tile(
                    i,
                    _pixel_box(x, image_y, _TILE, _TILE, fig_h),
                    _pixel_box(x, band_y, _TILE, _BAND, fig_h),
                    text,
                    wrong,
                )
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        # No bbox_inches="tight": it would crop and shift the geometry returned.
        fig.savefig(out, dpi=DPI, facecolor="white")
    finally:
        plt.close(fig)
    return GridLayout(round(fig_w * DPI), round(fig_h * DPI), tuple(tiles))


def grid_title(model: str, version: str, provider: str, correct: int, total: int) -> str:
    """Figure title naming model, version, provider and accuracy on the images shown."""
    accuracy = correct / total if total else 0.0
    return (
        f"model {model} v{version} on {provider}\n"
        f"accuracy on these {total} MNIST test images: {correct}/{total} = {accuracy:.0%}"
    )
