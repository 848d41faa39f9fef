"""Draw digits above their saliency maps: pure drawing, no server, no network.

Top row: the 28x28 image the model saw, titled with the answer. Bottom row: the same image
in grey with the occlusion saliency of that answer over it, red where blanking the pixels
lowers the answer's probability, blue where it raises it, scaled per image to its
largest magnitude (so each map shows where, not how much; the peak is printed under it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

# Agg renders to files without a display; set before pyplot is imported anywhere.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

TILE = 1.3  # inches per image
DPI = 100


def overlay(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """[28,28,3] floats: ``image`` (0..1) dimmed to grey, the signed map blended in."""
    grey = np.repeat((0.15 + 0.45 * image)[..., None], 3, axis=2)
    peak = float(np.abs(saliency).max())
    if peak == 0:
        return grey
    strength = (np.abs(saliency) / peak)[..., None]
    colour = np.where((saliency >= 0)[..., None], [0.9, 0.15, 0.1], [0.15, 0.45, 0.9])
    return (1 - 0.85 * strength) * grey + 0.85 * strength * colour


def draw_explanations(
    images: np.ndarray,
    maps: np.ndarray,
    answers: Sequence[str],
    title: str,
    out: Path,
) -> Path:
    """Write the PNG: one column per image (``images`` in 0..1, ``maps`` signed), 2 rows."""
    count = len(images)
    fig, axes = plt.subplots(
        2, count, figsize=(TILE * count, TILE * 2 + 0.9), dpi=DPI, squeeze=False
    )
    for i in range(count):
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(images[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        top.set_title(answers[i], fontsize=10)
        bottom.imshow(overlay(images[i], maps[i]), interpolation="nearest")
        bottom.set_xlabel(f"peak {np.abs(maps[i]).max():.2g}", fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
