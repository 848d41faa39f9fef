"""Step 8: one digit's ink -> the MNIST format the models were trained on.

MNIST digits are white on black, size-normalised into a 20x20 box preserving aspect ratio,
then centred by centre of mass in a 28x28 field.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

BOX = 20
FIELD = 28
# Stroke centres are full ink: the ink is scaled so this percentile of the digit's own
# pixels becomes 1 (a pencil digit reaches the models as dark as a felt pen's).
INK_PERCENTILE = 90


def digit_ink(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The digit's ink in its box, scaled to reach 1; everything outside its own pixels
    (and their anti-aliased rim) is 0, so specks inside the box are gone."""
    rim = ndimage.maximum_filter(mask, 3)  # the 8 neighbours: a binary dilation
    values = ink[mask]
    if values.size:
        nth = (values.size - 1) * INK_PERCENTILE // 100  # np.partition: ~5x np.percentile
        top = float(np.partition(values, nth)[nth])
    else:
        top = 1.0
    return np.clip(np.where(rim, ink, 0.0) / max(top, 1e-3), 0.0, 1.0).astype(np.float32)


def to_field(digit: np.ndarray) -> np.ndarray:
    """Ink of one digit (any size, [0,1]) -> float32 [28,28]: 20x20 box, centred by mass."""
    height, width = digit.shape
    scale = BOX / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray((digit * 255).astype(np.uint8)).resize(new_size, Image.LANCZOS)
    small = np.asarray(resized, dtype=np.float32) / 255.0
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    top, left = (FIELD - small.shape[0]) // 2, (FIELD - small.shape[1]) // 2
    field[top : top + small.shape[0], left : left + small.shape[1]] = small
    return center_by_mass(field)


def center_by_mass(field: np.ndarray) -> np.ndarray:
    """Shift a 28x28 image so its centre of mass is the field's centre (as MNIST did)."""
    total = field.sum()
    if total <= 0:
        return field
    rows, cols = np.indices(field.shape)
    middle = (FIELD - 1) / 2
    shift_y = round(middle - float((rows * field).sum() / total))
    shift_x = round(middle - float((cols * field).sum() / total))
    out = np.zeros_like(field)
    src_y = slice(max(0, -shift_y), min(FIELD, FIELD - shift_y))
    dst_y = slice(max(0, shift_y), min(FIELD, FIELD + shift_y))
    src_x = slice(max(0, -shift_x), min(FIELD, FIELD - shift_x))
    dst_x = slice(max(0, shift_x), min(FIELD, FIELD + shift_x))
    out[dst_y, dst_x] = field[src_y, src_x]
    return out
