"""Pure functions that join requests into one batch and split the outputs back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def merge(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Concatenate request arrays on axis 0; return the batch and each part's end row."""
    ends: list[int] = []
    total = 0
    for part in parts:
        total += part.shape[0]
        ends.append(total)
    if len(parts) == 1:
        return parts[0], ends
    return np.concatenate(parts, axis=0), ends


def split(outputs: np.ndarray, ends: Sequence[int]) -> list[np.ndarray]:
    """Rows of ``outputs`` for each request, as views, in request order."""
    if outputs.shape[0] != (ends[-1] if ends else 0):
        raise ValueError(f"model returned {outputs.shape[0]} rows for a batch of {ends[-1]}")
    pieces: list[np.ndarray] = []
    start = 0
    for end in ends:
        pieces.append(outputs[start:end])
        start = end
    return pieces
