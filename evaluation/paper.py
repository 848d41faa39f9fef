"""The sheet and the camera: pure functions on float32 RGB frames [H,W,3] in [0,1].

Paper, printed lines, dust and the sheet's edge are drawn first, then the ink, then what the
light and the phone do (uneven light and shadow, colour cast, noise, blur), then the JPEG with
its EXIF orientation. Each step is one function so a test can call it alone.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

RGB = tuple[float, float, float]

ORIENTATION_TAG = 0x0112
# EXIF orientation -> how the upright picture is turned for storage, so that a reader that
# applies the tag (Pillow's ImageOps.exif_transpose, a browser, a phone) shows it upright.
# 6 means "rotate 90 clockwise to display": the stored pixels are the upright turned 90
# counter-clockwise.
_STORE_TURN = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}
ORIENTATIONS = tuple(_STORE_TURN)


def sheet(size: tuple[int, int], colour: RGB) -> np.ndarray:
    """A plain sheet of ``colour`` filling a frame of ``size`` (width, height)."""
    width, height = size
    return np.broadcast_to(np.asarray(colour, np.float32), (height, width, 3)).copy()


def smooth_field(rng: np.random.Generator, size: tuple[int, int], cell: float) -> np.ndarray:
    """Zero-mean, unit-ish random field [H,W] varying over about ``cell`` pixels (blotches)."""
    width, height = size
    grid_w, grid_h = max(2, round(width / cell) + 2), max(2, round(height / cell) + 2)
    coarse = rng.normal(0.0, 1.0, (grid_h, grid_w)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def grain(image: np.ndarray, rng: np.random.Generator, strength: float, scale: float) -> None:
    """Paper grain in place: blotchy texture plus fine fibres, as brightness changes."""
    size = (image.shape[1], image.shape[0])
    blotches = smooth_field(rng, size, 14.0 * scale)
    fibres = smooth_field(rng, size, 1.5 * scale)
    image *= (1.0 + strength * (0.7 * blotches + 0.5 * fibres))[..., None]


def lines(
    image: np.ndarray,
    positions: np.ndarray,
    width: float,
    colour: RGB,
    vertical: bool = False,
) -> None:
    """Draw straight printed lines (ruled or squared paper) in place, anti-aliased."""
    extent = image.shape[1] if vertical else image.shape[0]
    coord = np.arange(extent, dtype=np.float32)[:, None]
    cover = np.clip(width / 2 + 0.5 - np.abs(coord - positions[None, :]), 0.0, 1.0).max(axis=1)
    cover = cover[None, :, None] if vertical else cover[:, None, None]
    image[:] = image * (1.0 - cover) + np.asarray(colour, np.float32) * cover


def discs(image: np.ndarray, centres: np.ndarray, radii: np.ndarray, colours: np.ndarray) -> None:
    """Soft round specks in place: one (x, y) centre, radius and RGB colour per speck."""
    height, width = image.shape[:2]
    for (x, y), radius, colour in zip(centres, radii, colours, strict=True):
        x0, x1 = max(0, int(x - radius - 2)), min(width, int(x + radius + 3))
        y0, y1 = max(0, int(y - radius - 2)), min(height, int(y + radius + 3))
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        distance = np.hypot(xs + 0.5 - x, ys + 0.5 - y)
        cover = np.clip(radius + 0.5 - distance, 0.0, 1.0)[..., None]
        patch = image[y0:y1, x0:x1]
        patch[:] = patch * (1.0 - cover) + colour.astype(np.float32) * cover


def ink(image: np.ndarray, coverage: np.ndarray, colour: RGB) -> None:
    """Lay ink of ``colour`` over the frame in place, weighted by ``coverage`` [H,W]."""
    cover = coverage[..., None]
    image[:] = image * (1.0 - cover) + np.asarray(colour, np.float32) * cover


def edge(
    image: np.ndarray, side: str, depth: float, tilt_degrees: float, table: RGB, shadow: float
) -> None:
    """Show the sheet's edge in place: beyond a slightly tilted line the table is visible.

    ``side`` is where the table is (left, right, top, bottom); ``depth`` how far into the frame
    the edge lies at the middle of that side, in pixels. The paper next to the edge gets a
    soft shadow of relative depth ``shadow``.
    """
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    slope = math.tan(math.radians(tilt_degrees))
    if side == "left":
        distance = xs - (depth + slope * (ys - height / 2))
    elif side == "right":
        distance = (width - depth + slope * (ys - height / 2)) - xs
    elif side == "top":
        distance = ys - (depth + slope * (xs - width / 2))
    elif side == "bottom":
        distance = (height - depth + slope * (xs - width / 2)) - ys
    else:
        raise ValueError(f"unknown side {side!r}")
    # distance > 0 on the paper; the table beyond the edge.
    paper = np.clip(distance + 0.5, 0.0, 1.0)[..., None]
    falloff = 0.025 * max(width, height)
    darken = 1.0 - shadow * np.exp(-np.maximum(distance, 0.0) / falloff)[..., None]
    image[:] = image * darken * paper + np.asarray(table, np.float32) * (1.0 - paper)


def illumination(
    size: tuple[int, int],
    low: float,
    angle_degrees: float,
    shadow_depth: float = 0.0,
    shadow_angle_degrees: float = 0.0,
    shadow_at: float = 0.7,
) -> np.ndarray:
    """Light falling on the sheet, [H,W] in (0,1]: a gradient and an optional soft shadow.

    The gradient runs along ``angle_degrees`` from 1.0 on one side of the frame to ``low``
    on the opposite side. The shadow darkens by ``shadow_depth`` the part of the frame beyond
    a line across ``shadow_angle_degrees`` at ``shadow_at`` (0..1) of the way, with a soft
    edge about 6 % of the frame wide.
    """
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)

    def along(degrees: float) -> np.ndarray:
        # 0 on one side of the frame, 1 on the opposite side, along the direction.
        a = math.radians(degrees)
        extent = abs(width * math.cos(a)) + abs(height * math.sin(a))
        t = ((xs - width / 2) * math.cos(a) + (ys - height / 2) * math.sin(a)) / extent
        return t + 0.5

    light = 1.0 - (1.0 - low) * along(angle_degrees)
    if shadow_depth > 0:
        soft = 0.06 * max(width, height)
        a = math.radians(shadow_angle_degrees)
        extent = abs(width * math.cos(a)) + abs(height * math.sin(a))
        inside = (along(shadow_angle_degrees) - shadow_at) * extent / soft
        light *= 1.0 - shadow_depth / (1.0 + np.exp(-inside))
    return light.astype(np.float32)


def defocus(image: np.ndarray, sigma: float) -> np.ndarray:
    """A defocused frame: Gaussian blur of ``sigma`` pixels."""
    return _from_pil(_to_pil(image).filter(ImageFilter.GaussianBlur(sigma)))


def motion(image: np.ndarray, length: float, angle_degrees: float) -> np.ndarray:
    """A shaken frame: the mean of copies shifted along a ``length``-pixel line."""
    steps = max(3, round(length) + 1)
    a = math.radians(angle_degrees)
    pad = math.ceil(length / 2) + 1
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    total = np.zeros_like(image)
    for t in np.linspace(-length / 2, length / 2, steps):
        dx, dy = round(t * math.cos(a)), round(t * math.sin(a))
        total += padded[pad + dy : pad + dy + height, pad + dx : pad + dx + width]
    return total / steps


def sensor_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> None:
    """Add Gaussian noise in place (per pixel and channel, ``sigma`` of full scale)."""
    image += rng.normal(0.0, sigma, image.shape).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to [0,1] and round to uint8 RGB."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_jpeg(pixels: np.ndarray, quality: int, orientation: int = 1) -> bytes:
    """JPEG bytes of upright uint8 RGB ``pixels``; stored turned with an EXIF Orientation tag.

    With ``orientation`` 3, 6 or 8 the stored pixels are the upright picture turned so that
    applying the tag gives the upright picture back; with 1 there is no EXIF block at all.
    """
    if orientation not in _STORE_TURN:
        raise ValueError(f"orientation {orientation} is not one of {ORIENTATIONS}")
    image = Image.fromarray(pixels, mode="RGB")
    turn = _STORE_TURN[orientation]
    out = io.BytesIO()
    if turn is None:
        image.save(out, format="JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        image.transpose(turn).save(out, format="JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def _to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(to_uint8(image), mode="RGB")


def _from_pil(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0
