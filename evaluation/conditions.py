"""Photo conditions: each draws the parameters of one way a phone photo differs from a scan.

A :class:`Recipe` says everything the renderer needs beyond where the digits are. ``scan`` is
the reference (dark ink on even white paper, a good JPEG). Every other condition changes the
scan's recipe in one respect, with parameters drawn from the condition's own random stream;
``phone`` combines several, the way a real phone photo does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.paper import RGB

# Pen colours (RGB in [0,1]); each draw jitters them a little.
BLACK_INK: RGB = (0.07, 0.07, 0.09)
BLUE_INK: RGB = (0.10, 0.19, 0.62)
RED_INK: RGB = (0.74, 0.10, 0.12)
WHITE_PAPER: RGB = (0.95, 0.95, 0.93)
# Pastel papers: yellow, pink, green, blue, orange.
PAPER_COLOURS: tuple[RGB, ...] = (
    (0.98, 0.92, 0.55),
    (0.98, 0.78, 0.82),
    (0.76, 0.92, 0.72),
    (0.72, 0.86, 0.98),
    (0.99, 0.76, 0.47),
)
TABLE_COLOURS: tuple[RGB, ...] = ((0.26, 0.18, 0.12), (0.12, 0.12, 0.13), (0.35, 0.33, 0.31))
EDGE_SIDES = ("left", "right", "top", "bottom")


@dataclass(frozen=True)
class Recipe:
    """How to render one photo (pixel sizes are for a 120-pixel-high frame and scale with it)."""

    paper: RGB = WHITE_PAPER
    ink: RGB = BLACK_INK
    pencil: bool = False  # grainy, partly covering strokes
    ruled: float = 0.0  # line spacing as a fraction of the digit height (0: none)
    squared: float = 0.0  # grid spacing as a fraction of the digit height (0: none)
    margin_line: bool = False  # the red margin line of ruled paper
    specks: int = 0
    edges: tuple[tuple[str, float, float], ...] = ()  # (side, depth fraction, tilt degrees)
    table: RGB = TABLE_COLOURS[0]
    light_low: float = 1.0  # brightness at the dark side (1: even light)
    light_angle: float = 0.0
    shadow: float = 0.0
    shadow_angle: float = 0.0
    cast: RGB = (1.0, 1.0, 1.0)
    grain: float = 0.0
    noise: float = 0.0
    defocus: float = 0.0  # Gaussian sigma as a fraction of the digit height
    motion: float = 0.0  # blur length as a fraction of the digit height
    motion_angle: float = 0.0
    rotation: float = 0.0  # degrees
    perspective: float = 0.0  # corner jitter as a fraction of the digit height
    scale: float = 1.0
    digit_pixels: float = 0.0  # the digit's height in frame pixels whatever the frame (0: scale)
    jpeg_quality: int = 92
    orientation: int = 1

    def params(self) -> dict[str, Any]:
        """The recipe's non-default fields, for the labels file (what was done to the photo)."""
        base = Recipe()
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != getattr(base, f.name):
                out[f.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    c = np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]))


# Each condition: (random stream, item index) -> the fields it changes on the scan recipe.
Changes = dict[str, Any]
Condition = Callable[[np.random.Generator, int], Changes]


def scan(rng: np.random.Generator, index: int) -> Changes:
    """The reference: dark ink, even white paper, a good JPEG."""
    return {}


def uneven_light(rng: np.random.Generator, index: int) -> Changes:
    """One side of the sheet at about half brightness, plus a soft shadow across part of it."""
    return {
        "light_low": float(rng.uniform(0.45, 0.55)),
        # From one side of the frame to the opposite one (within 20 degrees of an axis).
        "light_angle": float(90 * rng.integers(4) + rng.uniform(-20, 20)) % 360,
        "shadow": float(rng.uniform(0.2, 0.35)),
        "shadow_angle": float(rng.uniform(0, 360)),
    }


def warm_light(rng: np.random.Generator, index: int) -> Changes:
    """Tungsten-like light: blue and green weaker than red."""
    return {"cast": (1.0, float(rng.uniform(0.8, 0.88)), float(rng.uniform(0.55, 0.68)))}


def cool_light(rng: np.random.Generator, index: int) -> Changes:
    """Shade or LED light: red weaker than blue."""
    return {"cast": (float(rng.uniform(0.72, 0.82)), float(rng.uniform(0.86, 0.93)), 1.0)}


def grain(rng: np.random.Generator, index: int) -> Changes:
    """Paper grain (blotches and fibres) and sensor noise."""
    return {"grain": float(rng.uniform(0.05, 0.09)), "noise": float(rng.uniform(0.03, 0.06))}


def grey_ink(rng: np.random.Generator, index: int) -> Changes:
    """A worn or light pen: mid-grey ink."""
    level = float(rng.uniform(0.42, 0.55))
    return {"ink": (level, level, level)}


def blue_ink(rng: np.random.Generator, index: int) -> Changes:
    """A blue ballpoint."""
    return {"ink": _jitter(rng, BLUE_INK, 0.06)}


def red_ink(rng: np.random.Generator, index: int) -> Changes:
    """A red pen."""
    return {"ink": _jitter(rng, RED_INK, 0.06)}


def pencil(rng: np.random.Generator, index: int) -> Changes:
    """Pencil (grainy graphite strokes) on grey recycled paper."""
    paper = float(rng.uniform(0.68, 0.78))
    graphite = float(rng.uniform(0.28, 0.4))
    return {
        "paper": (paper, paper, paper * 0.97),
        "ink": (graphite, graphite, graphite * 1.03),
        "pencil": True,
    }


def coloured_paper(rng: np.random.Generator, index: int) -> Changes:
    """Pastel paper (yellow, pink, green, blue or orange) with dark ink."""
    paper = PAPER_COLOURS[int(rng.integers(len(PAPER_COLOURS)))]
    return {"paper": _jitter(rng, paper, 0.03)}


def rotation(rng: np.random.Generator, index: int) -> Changes:
    """A small rotation (+-15 degrees), perspective (corner jitter) and scale jitter."""
    return {
        "rotation": float(rng.uniform(-15, 15)),
        "perspective": float(rng.uniform(0.04, 0.12)),
        "scale": float(rng.uniform(0.75, 1.25)),
    }


def blur(rng: np.random.Generator, index: int) -> Changes:
    """Out of focus (even items) or shaken (odd items)."""
    if index % 2 == 0:
        return {"defocus": float(rng.uniform(0.03, 0.05))}
    return {"motion": float(rng.uniform(0.08, 0.15)), "motion_angle": float(rng.uniform(0, 180))}


def jpeg(rng: np.random.Generator, index: int) -> Changes:
    """A heavily compressed JPEG (quality 8-20): blocks and ringing."""
    return {"jpeg_quality": int(rng.integers(8, 21))}


def specks(rng: np.random.Generator, index: int) -> Changes:
    """Dust and specks on the paper away from the digit."""
    return {"specks": int(rng.integers(5, 16))}


def ruled(rng: np.random.Generator, index: int) -> Changes:
    """Ruled (lined) paper: light blue lines about a digit apart, sometimes a red margin."""
    return {"ruled": float(rng.uniform(0.9, 1.2)), "margin_line": bool(rng.random() < 0.5)}


def squared(rng: np.random.Generator, index: int) -> Changes:
    """Squared (grid) paper: squares a quarter to two fifths of the digit's height."""
    return {"squared": float(rng.uniform(0.25, 0.4))}


def sheet_edge(rng: np.random.Generator, index: int) -> Changes:
    """The sheet's edge and the dark table beyond it on one or two sides of the frame."""
    count = 1 + int(rng.random() < 0.5)
    sides = rng.choice(len(EDGE_SIDES), size=count, replace=False)
    edges = tuple(
        (EDGE_SIDES[int(s)], float(rng.uniform(0.04, 0.1)), float(rng.uniform(-6, 6)))
        for s in sides
    )
    return {"edges": edges, "table": TABLE_COLOURS[int(rng.integers(len(TABLE_COLOURS)))]}


def exif(rng: np.random.Generator, index: int) -> Changes:
    """The scan stored turned as phones store it, with EXIF Orientation 6, 8 or 3."""
    return {"orientation": (6, 8, 3)[index % 3]}


def phone(rng: np.random.Generator, index: int) -> Changes:
    """Everything at once, milder: a plausible phone photo of a digit on paper.

    Uneven light with a shadow, a warm or cool cast, grain and noise, grey, blue or black
    ink, a small rotation and perspective, slight defocus, a medium JPEG, a few specks, and
    every second photo stored turned with EXIF Orientation 6.
    """
    changes: Changes = {}
    changes.update(uneven_light(rng, index))
    changes.update(warm_light(rng, index) if rng.random() < 0.5 else cool_light(rng, index))
    changes.update(grain(rng, index))
    choice = int(rng.integers(3))
    if choice == 0:
        changes.update(grey_ink(rng, index))
    elif choice == 1:
        changes.update(blue_ink(rng, index))
    changes.update(
        {
            "rotation": float(rng.uniform(-10, 10)),
            "perspective": float(rng.uniform(0.02, 0.08)),
            "scale": float(rng.uniform(0.85, 1.15)),
            "defocus": float(rng.uniform(0.01, 0.025)),
            "jpeg_quality": int(rng.integers(55, 81)),
            "specks": int(rng.integers(0, 4)),
            "orientation": 6 if index % 2 else 1,
        }
    )
    return changes


def tilt(rng: np.random.Generator, index: int) -> Changes:
    """Turned 45-65 degrees either way: a note stuck on askew, a phone held at a slant.

    Three times ``rotation``'s angle, past the +-18 degrees that ``robust``'s augmentation
    turns its training digits by: the condition a fine-tune on people's corrections learns.
    """
    side = 1.0 if rng.random() < 0.5 else -1.0
    return {"rotation": side * float(rng.uniform(45, 65))}


def far_away(rng: np.random.Generator, index: int) -> Changes:
    """Photographed from far away: the digit only 6-8 pixels tall, whatever the frame.

    A number on a board or a sheet across the room; the preparation scales it up to MNIST's
    20-pixel box, so the model sees a blocky, blurred digit.
    """
    return {"digit_pixels": float(rng.uniform(6, 8))}


# Order is the report's order. Names are stable: each seeds its own random stream.
CONDITIONS: dict[str, Condition] = {
    "scan": scan,
    "uneven_light": uneven_light,
    "warm_light": warm_light,
    "cool_light": cool_light,
    "grain": grain,
    "grey_ink": grey_ink,
    "blue_ink": blue_ink,
    "red_ink": red_ink,
    "pencil": pencil,
    "coloured_paper": coloured_paper,
    "rotation": rotation,
    "blur": blur,
    "jpeg": jpeg,
    "specks": specks,
    "ruled": ruled,
    "squared": squared,
    "sheet_edge": sheet_edge,
    "exif": exif,
    "phone": phone,
    "tilt": tilt,
    "far_away": far_away,
}


def recipe(name: str, rng: np.random.Generator, index: int) -> Recipe:
    """The scan recipe changed by condition ``name``."""
    try:
        condition = CONDITIONS[name]
    except KeyError:
        raise ValueError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}") from None
    return dataclasses.replace(Recipe(), **condition(rng, index))


def describe(name: str) -> str:
    """The first line of a condition's docstring (for the docs and the report)."""
    doc = CONDITIONS[name].__doc__ or ""
    return doc.strip().splitlines()[0]
