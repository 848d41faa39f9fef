"""Occlusion saliency: which pixels the predicted label depends on (pure numpy).

A square window slides over the prepared 28x28 image with a fixed stride; each position
gives one copy of the image with that window set to the baseline. The drop of the predicted
class's probability from the original to a copy is credited to every pixel of its window,
and each pixel's score is the mean over the windows that cover it (Captum's ``Occlusion``
with ``sliding_window_shapes=(w, w)``, ``strides=(s, s)`` and a constant baseline).

The original and all its copies go to the model as ONE request, so an explanation costs one
batched inference. A window whose pixels already equal the baseline makes a copy identical to
the original: its drop is exactly 0, so that copy is never built or run (on MNIST digits with
the defaults about 70 of the 169 windows touch ink).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

SIDE = 28


@dataclass(frozen=True, slots=True)
class Occlusion:
    """How the image is masked: window side, stride (pixels) and the baseline value."""

    window: int = 4
    stride: int = 2
    # 0 is the MNIST background: a masked window reads as "no ink here".
    baseline: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.window <= SIDE or not 1 <= self.stride <= SIDE:
            raise ValueError(f"window and stride must lie in 1..{SIDE}")
        if (SIDE - self.window) % self.stride:
            # Captum leaves the last pixels uncovered then; here every pixel gets a score.
            raise ValueError(f"windows of {self.window} with stride {self.stride} miss the edge")

    @property
    def positions(self) -> int:
        """Windows per image (all of them, before blank ones are skipped)."""
        return ((SIDE - self.window) // self.stride + 1) ** 2


DEFAULT = Occlusion()


@cache
def window_masks(occlusion: Occlusion) -> tuple[np.ndarray, np.ndarray]:
    """Every window as a boolean [K,784] mask, and how many windows cover each pixel [784].

    Cached per (window, stride): read-only arrays shared by every request.
    """
    starts = range(0, SIDE - occlusion.window + 1, occlusion.stride)
    masks = np.zeros((len(starts), len(starts), SIDE, SIDE), dtype=bool)
    for i, row in enumerate(starts):
        for j, col in enumerate(starts):
            masks[i, j, row : row + occlusion.window, col : col + occlusion.window] = True
    masks = masks.reshape(-1, SIDE * SIDE)
    cover = masks.sum(axis=0).astype(np.float32)
    masks.flags.writeable = False
    cover.flags.writeable = False
    return masks, cover


@dataclass(frozen=True, slots=True)
class OcclusionPlan:
    """The one model request that explains N images, and how to read its answer back."""

    occlusion: Occlusion
    # [N + copies, 28, 28] float32: each image, then its masked copies.
    inputs: np.ndarray
    # Row of each original image in ``inputs``; its copies follow it.
    starts: np.ndarray
    # Per image: indices (into window_masks) of the windows that have copies.
    windows: tuple[np.ndarray, ...]

    @property
    def originals(self) -> np.ndarray:
        """Rows of ``inputs`` (and of the model's answer) that hold the images themselves."""
        return self.starts

    def saliency(self, probabilities: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """[N,28,28] float32 maps: the mean drop of each image's predicted-class probability
        when a window over the pixel is masked (negative where masking raised it).

        ``probabilities`` are the model's [rows, classes] answer to ``inputs``;
        ``predicted`` the class index of each image.
        """
        masks, cover = window_masks(self.occlusion)
        out = np.zeros((len(self.starts), SIDE * SIDE), dtype=np.float32)
        for n, (start, used) in enumerate(zip(self.starts.tolist(), self.windows, strict=True)):
            if not len(used):
                continue
            target = int(predicted[n])
            masked = probabilities[start + 1 : start + 1 + len(used), target]
            drops = (probabilities[start, target] - masked).astype(np.float32)
            out[n] = drops @ masks[used]
        out /= cover
        return out.reshape(-1, SIDE, SIDE)


def occlusion_plan(images: np.ndarray, occlusion: Occlusion = DEFAULT) -> OcclusionPlan:
    """Build the masked copies of ``images`` (float32 [N,28,28] or [N,784]) in one array."""
    flat = np.ascontiguousarray(images, dtype=np.float32).reshape(len(images), SIDE * SIDE)
    masks, _ = window_masks(occlusion)
    baseline = np.float32(occlusion.baseline)
    # A window that differs from the baseline somewhere: its copy changes the image.
    differs = flat != baseline
    windows = tuple(np.flatnonzero((masks & row).any(axis=1)) for row in differs)
    counts = np.array([1 + len(w) for w in windows])
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    inputs = np.empty((int(counts.sum()), SIDE * SIDE), dtype=np.float32)
    for image, start, used in zip(flat, starts.tolist(), windows, strict=True):
        inputs[start] = image
        copies = inputs[start + 1 : start + 1 + len(used)]
        copies[:] = image
        copies[masks[used]] = baseline
    return OcclusionPlan(occlusion, inputs.reshape(-1, SIDE, SIDE), starts, windows)
