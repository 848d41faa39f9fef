"""Write the photo set to a directory (JPEGs + ``labels.json``) and read its labels back.

Digits: a seeded permutation of MNIST's 10,000 **test** images; single-digit photos take it
from the front (the same ``count`` digits under every condition), sheets from the back, so
changing one count does not change the other part's digits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.conditions import CONDITIONS, describe
from evaluation.geometry import Glyph, glyph
from evaluation.photos import single_photo, stream
from evaluation.sheets import LAYOUTS, length_of, sheet

LABELS = "labels.json"
FORMAT = 1
DEFAULT_SEED = 21
DEFAULT_COUNT = 200
DEFAULT_SHEETS = 20  # per length per (layout, condition)


@dataclass(frozen=True)
class MnistTestDigits:
    """MNIST test images (uint8 [N,28,28], white on black) and labels, in test-set order."""

    images: np.ndarray
    labels: np.ndarray

    def glyph(self, index: int) -> Glyph:
        """Test digit ``index`` cropped to its ink."""
        return glyph(self.images[index], int(self.labels[index]), index)


def load_test_digits(path: Path | None = None) -> MnistTestDigits:
    """MNIST's test set through the project's verified loader (never the training set)."""
    from training.mnist import load_mnist

    mnist = load_mnist(path)
    return MnistTestDigits(mnist.x_test, mnist.y_test)


def digit_order(seed: int, n: int) -> np.ndarray:
    """The seeded permutation of test indices both parts draw from."""
    return stream(seed, "digits", 0).permutation(n)


def write_set(
    out: Path,
    digits: MnistTestDigits,
    seed: int = DEFAULT_SEED,
    count: int = DEFAULT_COUNT,
    sheets_per_length: int = DEFAULT_SHEETS,
    conditions: tuple[str, ...] = tuple(CONDITIONS),
) -> dict[str, Any]:
    """Render the set into ``out`` and write ``labels.json``; return the labels."""
    order = digit_order(seed, len(digits.labels))
    singles = [
        _write_single(out, condition, index, digits.glyph(int(order[index])), seed)
        for condition in conditions
        for index in range(count)
    ]
    sheets = list(_write_sheets(out, digits, order[::-1], seed, sheets_per_length))
    labels = {
        "format": FORMAT,
        "seed": seed,
        "source": "MNIST test set (training.mnist loader); mnist_index is the test-set index",
        "conditions": {name: describe(name) for name in conditions},
        "layouts": {name: list(conds) for name, conds in LAYOUTS.items()},
        "singles": singles,
        "sheets": sheets,
    }
    (out / LABELS).write_text(json.dumps(labels, indent=1) + "\n")
    return labels


def _write_single(out: Path, condition: str, index: int, g: Glyph, seed: int) -> dict[str, Any]:
    item = single_photo(condition, index, g, seed)
    relative = Path("singles") / condition / f"{index:04d}.jpg"
    _save(out / relative, item.photo.jpeg)
    return {
        "file": relative.as_posix(),
        "condition": condition,
        "index": index,
        "label": g.label,
        "mnist_index": g.mnist_index,
        "width": item.size[0],
        "height": item.size[1],
        "orientation": item.recipe.orientation,
        "box": item.photo.boxes[0],
        "params": item.recipe.params(),
    }


def _write_sheets(
    out: Path, digits: MnistTestDigits, order: np.ndarray, seed: int, per_length: int
) -> Iterator[dict[str, Any]]:
    used = 0
    for layout, conditions in LAYOUTS.items():
        for index in range(per_length * 5):
            n = length_of(index)
            chosen = [digits.glyph(int(i)) for i in order[used : used + n]]
            used += n
            # The same digits under each of the layout's conditions.
            for condition in conditions:
                s = sheet(layout, condition, index, chosen, seed)
                relative = Path("sheets") / layout / condition / f"{index:04d}.jpg"
                _save(out / relative, s.photo.jpeg)
                yield {
                    "file": relative.as_posix(),
                    "layout": layout,
                    "condition": condition,
                    "index": index,
                    "text": s.text,
                    "lines": ["".join(str(g.label) for g in line) for line in s.lines],
                    "digits": [
                        {"label": g.label, "mnist_index": g.mnist_index, "box": box}
                        for g, box in zip(
                            [g for line in s.lines for g in line], s.photo.boxes, strict=True
                        )
                    ],
                    "width": s.size[0],
                    "height": s.size[1],
                    "orientation": s.recipe.orientation,
                    "params": s.recipe.params(),
                }


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def read_labels(directory: Path) -> dict[str, Any]:
    """The labels of a set written by :func:`write_set` (checks the format number)."""
    path = directory / LABELS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: write a set with `digits-eval photos --out DIR`"
        )
    labels = json.loads(path.read_text())
    if labels.get("format") != FORMAT:
        raise ValueError(f"{path}: format {labels.get('format')!r}, expected {FORMAT}")
    return labels
