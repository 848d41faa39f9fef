"""Write the sample images in examples/ from MNIST *test* digits (never training digits).

    python -m examples.make

digit.png   a drawn digit: dark on white, 280x280 like the page's drawing pad
photo.jpg   a phone photo of one digit: uneven light, a shadow, warm light, stored sideways
            with EXIF Orientation 6 as phones do
number.jpg  a phone photo of the number 2026 written by four MNIST writers
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from examples import render

HERE = Path(__file__).resolve().parent
NUMBER = "2026"


def first_test_index(labels: np.ndarray, digit: int, skip: int = 0) -> int:
    """Index of the ``skip``-th test digit with this label."""
    return int(np.nonzero(labels == digit)[0][skip])


def main() -> int:
    """Write the three images; print their names and sizes."""
    from training.mnist import load_mnist

    mnist = load_mnist()
    x, y = mnist.x_test, mnist.y_test
    rng = np.random.default_rng(2026)
    seven = x[first_test_index(y, 7)]
    drawing = render.place([render.ink_of(seven, 200)], (280, 280))[0]
    files = {"digit.png": render.encode(render.photo(drawing, render.Look(), rng), "PNG")}
    four = x[first_test_index(y, 4)]
    photo = render.digit_photo(four, render.UNEVEN, rng, size=(320, 240), fill=0.5)
    files["photo.jpg"] = render.encode(photo, "JPEG", orientation=6)
    seen: dict[int, int] = {}
    digits = []
    for char in NUMBER:
        digit = int(char)
        digits.append(x[first_test_index(y, digit, seen.get(digit, 0))])
        seen[digit] = seen.get(digit, 0) + 1
    number, _ = render.number_photo(digits, render.UNEVEN, rng, height=96)
    files["number.jpg"] = render.encode(number, "JPEG")
    for name, data in files.items():
        (HERE / name).write_bytes(data)
        print(f"examples/{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
