"""Multi-digit sheets: the ground truth matches what is drawn, for every layout."""

from __future__ import annotations

import io
from itertools import pairwise

import numpy as np
import pytest
from PIL import Image, ImageOps

from evaluation import paper
from evaluation.dataset import digit_order
from evaluation.geometry import ink_coverage
from evaluation.sheets import LAYOUTS, Sheet, length_of, sheet

SEED = 21


def make(digits, layout: str, condition: str, index: int) -> Sheet:
    order = digit_order(SEED, len(digits.labels))[::-1]
    n = length_of(index)
    chosen = [digits.glyph(int(i)) for i in order[10 * index : 10 * index + n]]
    return sheet(layout, condition, index, chosen, SEED)


def right(box: dict) -> int:
    return box["x"] + box["width"]


@pytest.mark.parametrize("index", range(5))
def test_separated_numbers_have_gaps_and_read_left_to_right(digits, index):
    s = make(digits, "separated", "scan", index)
    assert len(s.text) == index + 2 == len(s.photo.boxes)
    for a, b in pairwise(s.photo.boxes):
        assert b["x"] - right(a) >= 0.2 * min(a["height"], b["height"]), (a, b)


@pytest.mark.parametrize("index", range(5))
def test_touching_neighbours_ink_touches(digits, index):
    s = make(digits, "touching", "scan", index)
    glyphs = [g for line in s.lines for g in line]
    inks = [ink_coverage(g, q, s.size) > 0.5 for g, q in zip(glyphs, s.quads, strict=True)]
    for a, b in pairwise(inks):
        assert (a & b).any()
    for a, b in pairwise(s.photo.boxes):
        assert a["x"] < b["x"] < right(a), (a, b)


@pytest.mark.parametrize("index", range(5))
def test_two_lines_put_the_second_part_below_the_first(digits, index):
    s = make(digits, "two_line", "scan", index)
    first, second = s.lines
    assert len(first) + len(second) == index + 2
    assert len(first) - len(second) in (0, 1)
    boxes = s.photo.boxes
    top_line, bottom_line = boxes[: len(first)], boxes[len(first) :]
    lowest_top = max(b["y"] + b["height"] for b in top_line)
    assert all(b["y"] > lowest_top - 0.2 * b["height"] for b in bottom_line)


def test_ground_truth_boxes_hold_the_ink(digits):
    s = make(digits, "separated", "scan", 3)
    g = s.photo.upright.mean(axis=2)
    ink = g < 128
    inside = np.zeros_like(ink)
    for b in s.photo.boxes:
        inside[b["y"] : b["y"] + b["height"], b["x"] : b["x"] + b["width"]] = True
    assert ink[inside].sum() > 0.97 * ink.sum()


def test_sheets_are_deterministic_and_each_layout_has_its_conditions(digits):
    for layout, conditions in LAYOUTS.items():
        assert "scan" in conditions and "phone" in conditions
        a, b = make(digits, layout, "phone", 1), make(digits, layout, "phone", 1)
        assert a.photo.jpeg == b.photo.jpeg
    assert "uneven_light" in LAYOUTS["separated"]


def test_turned_sheets_keep_their_boxes_in_upright_pixels(digits):
    s = make(digits, "separated", "phone", 1)  # odd index: stored with orientation 6
    assert s.recipe.orientation == 6
    stored = Image.open(io.BytesIO(s.photo.jpeg))
    assert stored.getexif()[paper.ORIENTATION_TAG] == 6
    shown = ImageOps.exif_transpose(stored)
    assert shown.size == (s.size[0], s.size[1])
    assert all(right(b) <= s.size[0] and b["y"] + b["height"] <= s.size[1] for b in s.photo.boxes)
