"""Input preparation: encoded photos and drawings -> MNIST-style 28x28 digits.

One module per step group, each step a function a test can call alone:
``decode`` (bounded decode, EXIF orientation), ``light`` (paper light, grey, flatten),
``ink`` (Otsu threshold, line removal, connected parts), ``digits`` (choose the digit or
segment a number), ``mnist`` (20x20 box, centre of mass), and ``pipeline`` (the order).
docs/design.md explains the order and what is not handled.
"""

from serving.preparation.decode import MAX_PIXELS, WORKING_SIDE, decode_rgb
from serving.preparation.pipeline import (
    Reading,
    digit_of,
    ink_of,
    prepare,
    prepare_encoded,
    read,
    read_decoded,
)

__all__ = [
    "MAX_PIXELS",
    "WORKING_SIDE",
    "Reading",
    "decode_rgb",
    "digit_of",
    "ink_of",
    "prepare",
    "prepare_encoded",
    "read",
    "read_decoded",
]
