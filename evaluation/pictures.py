"""PNG pictures of the set and of a run, drawn with Pillow (no display, no matplotlib).

Photos are shown the way a correct reader shows them: EXIF orientation applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

_THUMB_HEIGHT = 72
_LABEL_WIDTH = 220
_PAD = 4


def shown(path: Path) -> Image.Image:
    """The photo at ``path`` as a correct reader shows it (EXIF orientation applied), RGB."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def _thumb(
    image: Image.Image,
    height: int = _THUMB_HEIGHT,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), resample)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def contact_sheet(rows: Sequence[tuple[str, Sequence[Path]]], out: Path) -> Path:
    """One row per (title, photos): the title, then the photos as thumbnails, into ``out``."""
    thumbs = [(title, [_thumb(shown(p)) for p in paths]) for title, paths in rows]
    width = _LABEL_WIDTH + max(sum(t.width + _PAD for t in row) for _, row in thumbs)
    height = len(thumbs) * (_THUMB_HEIGHT + _PAD) + _PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    for r, (title, row) in enumerate(thumbs):
        y = _PAD + r * (_THUMB_HEIGHT + _PAD)
        draw.text((_PAD, y + _THUMB_HEIGHT // 2 - 8), title, fill="black", font=font)
        _paste_row(sheet, row, _LABEL_WIDTH, y)
    return _save(sheet, out)


def _paste_row(canvas: Image.Image, images: Sequence[Image.Image], x: int, y: int) -> None:
    for image in images:
        canvas.paste(image, (x, y))
        x += image.width + _PAD


def _save(picture: Image.Image, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the picture small enough for the docs.
    picture.quantize(256, dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out


@dataclass(frozen=True)
class Example:
    """One photo of the results figure: the photo, what the server prepared, its answer."""

    photo: Path
    title: str
    truth: str
    answer: str
    probability: float | None
    prepared: np.ndarray | None  # [28,W] in [0,1], white on black, from ?debug=1
    boxes: Sequence[dict[str, Any]] = ()  # /v1/read's digit boxes, drawn on the photo


def results_figure(examples: Sequence[Example], out: Path) -> Path:
    """A PNG with one column per example: title, photo (with boxes), prepared 28x28, answer."""
    font, small = _font(13), _font(11)
    photo_height, prepared_side, text_height = 120, 84, 36
    columns: list[Image.Image] = []
    for ex in examples:
        photo = shown(ex.photo)
        if ex.boxes:
            draw = ImageDraw.Draw(photo)
            line = max(1, photo.height // 120)
            for box in ex.boxes:
                x, y, w, h = box["x"], box["y"], box["width"], box["height"]
                draw.rectangle((x, y, x + w - 1, y + h - 1), outline=(230, 30, 30), width=line)
        thumb = _thumb(photo, photo_height)
        tile = None
        if ex.prepared is not None:
            pixels = np.round(np.clip(ex.prepared, 0.0, 1.0) * 255).astype(np.uint8)
            tile = _thumb(
                Image.fromarray(pixels, mode="L"), prepared_side, Image.Resampling.NEAREST
            ).convert("RGB")
        width = max(thumb.width, tile.width if tile else 0, prepared_side) + 2 * _PAD
        column = Image.new(
            "RGB", (width, 18 + photo_height + prepared_side + text_height + 4 * _PAD), "white"
        )
        draw = ImageDraw.Draw(column)
        draw.text((_PAD, 2), ex.title, fill="black", font=small)
        column.paste(thumb, (_PAD, 18))
        y = 18 + photo_height + _PAD
        if tile is not None:
            column.paste(tile, (_PAD, y))
        else:
            draw.text((_PAD, y + 30), "(no prepared image)", fill="grey", font=small)
        y += prepared_side + _PAD
        right = ex.answer == ex.truth
        colour = (20, 130, 40) if right else (200, 30, 30)
        shown_p = "" if ex.probability is None else f" ({ex.probability:.2f})"
        draw.text((_PAD, y), f"answer {ex.answer}{shown_p}", fill=colour, font=font)
        draw.text((_PAD, y + 17), f"truth {ex.truth}", fill="black", font=small)
        columns.append(column)
    width = sum(c.width for c in columns) + _PAD * (len(columns) + 1)
    height = max(c.height for c in columns) + 2 * _PAD
    figure = Image.new("RGB", (width, height), (235, 235, 235))
    _paste_row(figure, columns, _PAD, _PAD)
    return _save(figure, out)
