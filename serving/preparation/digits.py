"""Step 7: which ink parts make the digit (classify), or the digits of a number (read).

A digit is a group of connected ink parts: specks are dropped by size, parts on the image's
border (the sheet's edge, a shadow) give way to parts inside it, and the parts of a broken
digit (a 5's detached bar, a 4 drawn in two strokes) are joined because they overlap
horizontally. A part far wider than the line is tall is several touching digits, cut at the
thinnest columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from serving.preparation.ink import Part

# Parts smaller than this share of the largest part's area are specks.
SPECK_FRACTION = 0.04
MIN_AREA = 4
# A border part is the digit only if no inside part has this share of its area.
INSIDE_FRACTION = 0.3
# Two parts overlapping horizontally by this share of the narrower one are one digit.
JOIN_OVERLAP = 0.5
# Wider than this many line heights: touching digits (MNIST digits are at most ~0.9 as wide
# as tall); each is taken to be about DIGIT_WIDTH line heights wide.
SPLIT_RATIO = 1.15
DIGIT_WIDTH = 0.7
# A group in a line shorter than this share of the line's height is a dash or a speck...
MIN_HEIGHT_FRACTION = 0.35
# ...and one shorter than this, next to a digit (closer than FRAGMENT_GAP line heights), is a
# piece of that digit (a 5's bar or a 7's stroke that the pen or the scan broke off).
FRAGMENT_FRACTION = 0.65
FRAGMENT_GAP = 0.25
# A cut between touching digits crosses at most this many stroke widths of ink (ink x strokes).
CUT_STROKES = 2.5


@dataclass(frozen=True, slots=True)
class Region:
    """One digit: the labels of its parts, its box in the label image, its text line."""

    labels: tuple[int, ...]
    top: int
    left: int
    bottom: int
    right: int
    line: int = 0

    def mask(self, label_image: np.ndarray) -> np.ndarray:
        """The digit's own pixels inside its box (other parts in the box left out)."""
        crop = label_image[self.top : self.bottom, self.left : self.right]
        if len(self.labels) == 1:
            return crop == self.labels[0]
        return np.isin(crop, self.labels)


def _box(parts: Sequence[Part]) -> tuple[int, int, int, int]:
    return (
        min(p.top for p in parts),
        min(p.left for p in parts),
        max(p.bottom for p in parts),
        max(p.right for p in parts),
    )


def _region(parts: Sequence[Part], line: int = 0) -> Region:
    return Region(tuple(p.label for p in parts), *_box(parts), line=line)


def significant(parts: Sequence[Part]) -> list[Part]:
    """Parts that are not specks (``parts`` largest first)."""
    if not parts:
        return []
    floor = max(MIN_AREA, SPECK_FRACTION * parts[0].area)
    return [p for p in parts if p.area >= floor]


def _inside_first(parts: list[Part], shape: tuple[int, ...]) -> list[Part]:
    """Parts away from the image's border, unless the border holds the only big ones."""
    inside = [p for p in parts if not p.touches_border(shape)]
    if inside and inside[0].area >= INSIDE_FRACTION * parts[0].area:
        return inside
    return parts


def choose_digit(parts: Sequence[Part], shape: tuple[int, ...]) -> Region | None:
    """The one digit of a classify request: the largest part and the parts near it."""
    candidates = _inside_first(significant(parts), shape)
    if not candidates:
        return None
    main = candidates[0]
    reach = 0.2 * max(main.height, main.width)
    group = [main]
    for part in candidates[1:]:
        if (
            part.left < main.right + reach
            and part.right > main.left - reach
            and part.top < main.bottom + reach
            and part.bottom > main.top - reach
        ):
            group.append(part)
    return _region(group)


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return min(a1, b1) - max(a0, b0)


def _lines(parts: list[Part]) -> list[list[Part]]:
    """Parts grouped into text lines by vertical overlap, tallest parts first; top to bottom.

    A short part (a 5's detached bar) that overlaps no line joins the line just below or
    above it whose parts it overlaps horizontally.
    """
    lines: list[list[Part]] = []
    spans: list[list[int]] = []
    tallest = max((p.height for p in parts), default=0)
    for part in sorted(parts, key=lambda p: -p.height):
        home = None
        for index, (top, bottom) in enumerate(spans):
            if _overlap(part.top, part.bottom, top, bottom) >= 0.5 * min(part.height, bottom - top):
                home = index
                break
        if home is None and part.height < 0.5 * tallest:
            for index, (top, bottom) in enumerate(spans):
                near = max(top - part.bottom, part.top - bottom) < 0.3 * (bottom - top)
                if near and any(
                    _overlap(part.left, part.right, p.left, p.right) > 0 for p in lines[index]
                ):
                    home = index
                    break
        if home is None:
            lines.append([part])
            spans.append([part.top, part.bottom])
        else:
            lines[home].append(part)
            spans[home] = [min(spans[home][0], part.top), max(spans[home][1], part.bottom)]
    order = sorted(range(len(lines)), key=lambda i: spans[i][0] + spans[i][1])
    return [lines[i] for i in order]


def _join(line: list[Part]) -> list[list[Part]]:
    """Parts of one line grouped into digits by horizontal overlap, left to right."""
    groups: list[list[Part]] = []
    for part in sorted(line, key=lambda p: p.left):
        if groups:
            _, left, _, right = _box(groups[-1])
            narrower = min(part.width, right - left)
            if _overlap(part.left, part.right, left, right) >= JOIN_OVERLAP * narrower:
                groups[-1].append(part)
                continue
        groups.append([part])
    return groups


def _split(region: Region, label_image: np.ndarray, line_height: int) -> list[Region]:
    """Cut a region holding several touching digits at its thinnest columns."""
    width = region.right - region.left
    if width <= SPLIT_RATIO * line_height:
        return [region]
    count = max(2, round(width / (DIGIT_WIDTH * line_height)))
    mask = region.mask(label_image)
    # Cost of cutting at a column: its ink times its number of separate strokes. Inside a 0
    # a column crosses two thin strokes; where two digits touch, one.
    runs = (mask[1:] & ~mask[:-1]).sum(axis=0) + mask[0]
    cost = mask.sum(axis=0) * np.maximum(runs, 1)
    profile = np.convolve(cost.astype(np.float32), np.ones(3) / 3, mode="same")
    # The pen's stroke width: ink per stroke in a typical column.
    inked = runs > 0
    stroke = float(np.median(mask.sum(axis=0)[inked] / runs[inked])) if inked.any() else 1.0
    step = width / count
    cuts = [0]
    for k in range(1, count):
        # Near the expected cut only: the inside of a 0 is as thin as the join of two digits.
        lo = max(cuts[-1] + 1, round(k * step - 0.25 * step))
        hi = min(width - 1, round(k * step + 0.25 * step))
        if hi <= lo:
            continue
        cut = lo + int(np.argmin(profile[lo:hi]))
        # Only where the column crosses about one stroke: a wide 0 or a 9's loop is not cut.
        if profile[cut] <= CUT_STROKES * stroke:
            cuts.append(cut)
    if len(cuts) == 1:
        return [region]
    cuts.append(width)
    pieces = []
    for start, stop in pairwise(cuts):
        rows = np.nonzero(mask[:, start:stop].any(axis=1))[0]
        if rows.size == 0:
            continue
        pieces.append(
            Region(
                region.labels,
                region.top + int(rows[0]),
                region.left + start,
                region.top + int(rows[-1]) + 1,
                region.left + stop,
                region.line,
            )
        )
    return pieces


def _height(group: list[Part]) -> int:
    top, _, bottom, _ = _box(group)
    return bottom - top


def _gap(a: list[Part], b: list[Part]) -> int:
    """Horizontal space between two groups (0 when they overlap)."""
    _, a_left, _, a_right = _box(a)
    _, b_left, _, b_right = _box(b)
    return max(b_left - a_right, a_left - b_right, 0)


def _absorb_fragments(
    groups: list[list[Part]], line_height: int, whole: set[int]
) -> list[list[Part]]:
    """Join short groups to the digit right beside them; drop short ones standing alone.
    The ids of groups that took a fragment in are added to ``whole``: one digit, not cut."""
    groups = [list(g) for g in groups]
    for group in sorted(groups, key=_height):
        if _height(group) >= FRAGMENT_FRACTION * line_height:
            break
        others = [g for g in groups if g is not group]
        if not others:
            break
        nearest = min(others, key=lambda other, group=group: _gap(group, other))
        if _gap(group, nearest) <= FRAGMENT_GAP * line_height:
            nearest.extend(group)
            groups.remove(group)
            whole.add(id(nearest))
        elif _height(group) < MIN_HEIGHT_FRACTION * line_height:
            groups.remove(group)
    return sorted(groups, key=lambda g: _box(g)[1])


def segment(parts: Sequence[Part], label_image: np.ndarray) -> list[Region]:
    """Every digit of a number in reading order: lines top to bottom, left to right in each."""
    candidates = _inside_first(significant(parts), label_image.shape)
    regions: list[Region] = []
    lines = _lines(candidates)
    tallest_part = max((p.height for p in candidates), default=0)
    for index, line in enumerate(lines):
        groups = _join(line)
        tallest = max(_height(g) for g in groups)
        if tallest < MIN_HEIGHT_FRACTION * tallest_part:
            continue  # a line of specks (grain, dust) beside the real digits
        heights = sorted(_height(g) for g in groups if _height(g) >= 0.5 * tallest)
        line_height = heights[len(heights) // 2]
        whole: set[int] = set()
        for group in _absorb_fragments(groups, line_height, whole):
            region = _region(group, index)
            if id(group) in whole:
                regions.append(region)
            else:
                regions.extend(_split(region, label_image, line_height))
    # Line numbers count only lines that kept a digit.
    renumber = {old: new for new, old in enumerate(sorted({r.line for r in regions}))}
    return [Region(r.labels, r.top, r.left, r.bottom, r.right, renumber[r.line]) for r in regions]
