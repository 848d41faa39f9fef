"""PNG artifacts for a trained model (matplotlib, Agg backend; numpy arrays in, files out)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_conv_filters",
    "plot_first_layer_weights",
    "plot_learning_curves",
    "signal_pixels",
    "symmetric_limit",
]

# A pixel "carries signal" when at least this fraction of the training images light it. The
# first layer's weights on the others never (or hardly ever) get a gradient: they keep their
# random initial values, and would set each tile's colour scale if they were counted.
SIGNAL_FRACTION = 0.01
# Even inside that area a handful of rarely lit pixels hold the largest weights; the colour
# range of a masked tile is this percentile of its |weights| (the few above it saturate).
SIGNAL_PERCENTILE = 98.0


def _pyplot():
    import matplotlib

    # Agg: no display on servers/CI; must be chosen before pyplot is imported.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(
    history: Mapping[str, Sequence[float]], path: str | Path, title: str
) -> Path:
    """Loss and accuracy per epoch, training vs validation, side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label, style in ((metric, "train", "o-"), (f"val_{metric}", "validation", "s--")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=label, markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{title}: {metric}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def signal_pixels(images: np.ndarray, min_fraction: float = SIGNAL_FRACTION) -> np.ndarray:
    """Boolean [28,28]: pixels lit (> 0) in at least ``min_fraction`` of ``images`` [N,28,28]."""
    images = np.asarray(images)
    return np.mean(images.reshape(len(images), 28, 28) > 0, axis=0) >= min_fraction


def symmetric_limit(tile: np.ndarray, percentile: float = 100.0) -> float:
    """The colour range +-limit of one tile: the ``percentile`` of |weight| over its finite
    pixels (NaN marks masked ones); 1.0 for an all-zero tile."""
    finite = np.abs(tile[np.isfinite(tile)])
    limit = float(np.percentile(finite, percentile)) if finite.size else 0.0
    return limit if limit > 0 else 1.0


def plot_first_layer_weights(
    kernel: np.ndarray,
    path: str | Path,
    title: str,
    max_tiles: int = 100,
    signal: np.ndarray | None = None,
) -> Path:
    """First dense layer's weights [784, units] as one 28x28 tile per unit.

    Each tile has its own symmetric colour range (blue negative, red positive), since units
    differ in scale and a shared range would wash most of them out. With ``signal`` (boolean
    [28,28], see :func:`signal_pixels`) the pixels outside it are drawn grey and left out of
    the range, which is then the 98th percentile of the remaining |weights|, so the untrained
    border does not hide the learned strokes.
    """
    kernel = np.asarray(kernel, dtype=np.float64).reshape(784, -1)[:, :max_tiles]
    units = kernel.shape[1]
    tiles = [kernel[:, index].reshape(28, 28) for index in range(units)]
    if signal is not None:
        mask = np.asarray(signal, dtype=bool).reshape(28, 28)
        tiles = [np.where(mask, tile, np.nan) for tile in tiles]
    percentile = 100.0 if signal is None else SIGNAL_PERCENTILE
    return _plot_tiles(tiles, min(units, 10), (1.3, 1.4), path, title, percentile)


def plot_conv_filters(kernel: np.ndarray, path: str | Path, title: str) -> Path:
    """A Conv2D kernel [kh, kw, 1, filters] as one small image per filter."""
    kernel = np.asarray(kernel)
    tiles = [kernel[:, :, 0, index] for index in range(kernel.shape[-1])]
    return _plot_tiles(tiles, 8, (1.2, 1.3), path, title, 100.0)


def _plot_tiles(
    tiles: list[np.ndarray],
    cols: int,
    cell: tuple[float, float],
    path: str | Path,
    title: str,
    percentile: float,
) -> Path:
    """Signed weight tiles on a symmetric red/blue scale, ``cols`` per row."""
    plt = _pyplot()
    rows = math.ceil(len(tiles) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(cell[0] * cols, cell[1] * rows + 0.5), squeeze=False
    )
    cmap = plt.get_cmap("seismic").with_extremes(bad="0.75")  # masked pixels: grey
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(tiles):
            continue
        limit = symmetric_limit(tiles[index], percentile)
        ax.imshow(np.ma.masked_invalid(tiles[index]), cmap=cmap, vmin=-limit, vmax=limit)
        ax.set_title(str(index), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def plot_confusion_matrix(
    true: np.ndarray, predicted: np.ndarray, labels: Sequence[str], path: str | Path, title: str
) -> Path:
    """Confusion matrix with counts in each cell; off-diagonal cells coloured by count."""
    plt = _pyplot()
    matrix = confusion_matrix(true, predicted, len(labels))
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    # Colour the errors only: the diagonal would otherwise dominate and hide the mistakes.
    errors = matrix.astype(float)
    np.fill_diagonal(errors, 0)
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(errors, cmap="Reds")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold" if i == j else "normal",
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: {matrix.sum()} test images, accuracy {accuracy:.4f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
