"""Single-digit photos: deterministic, and each condition does what it says."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from evaluation import paper
from evaluation.conditions import CONDITIONS
from evaluation.dataset import digit_order
from evaluation.photos import SinglePhoto, single_photo

SEED = 21


def photo(digits, condition: str, index: int = 0, seed: int = SEED) -> SinglePhoto:
    order = digit_order(seed, len(digits.labels))
    return single_photo(condition, index, digits.glyph(int(order[index])), seed)


def grey(item: SinglePhoto) -> np.ndarray:
    return item.photo.upright.astype(np.float32).mean(axis=2) / 255.0


def paper_mask(item: SinglePhoto, margin: float = 0.25) -> np.ndarray:
    """True away from the digit's box (grown by ``margin`` of its height)."""
    box = item.photo.boxes[0]
    grow = int(margin * box["height"]) + 2
    mask = np.ones(item.photo.upright.shape[:2], dtype=bool)
    mask[
        max(0, box["y"] - grow) : box["y"] + box["height"] + grow,
        max(0, box["x"] - grow) : box["x"] + box["width"] + grow,
    ] = False
    return mask


def ink_mask(item: SinglePhoto) -> np.ndarray:
    """The darkest tenth of the pixels inside the digit's box (its ink)."""
    box = item.photo.boxes[0]
    mask = np.zeros(item.photo.upright.shape[:2], dtype=bool)
    inside = (slice(box["y"], box["y"] + box["height"]), slice(box["x"], box["x"] + box["width"]))
    g = grey(item)
    mask[inside] = g[inside] <= np.quantile(g[inside], 0.1)
    return mask


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_every_condition_is_deterministic_by_seed(digits, condition):
    first, again = photo(digits, condition, 3), photo(digits, condition, 3)
    assert first.photo.jpeg == again.photo.jpeg
    assert first.photo.boxes == again.photo.boxes
    other = photo(digits, condition, 3, seed=SEED + 1)
    assert other.photo.jpeg != first.photo.jpeg


def test_digits_come_from_the_mnist_test_set(digits):
    order = digit_order(SEED, len(digits.labels))
    item = photo(digits, "scan", 5)
    assert item.glyph.mnist_index == int(order[5])
    assert item.glyph.label == int(digits.labels[order[5]])
    # The glyph is that test image cropped to its ink.
    source = digits.images[order[5]]
    assert item.glyph.pixels.max() == source.max()
    assert item.glyph.pixels.sum() <= source.sum()


def test_every_condition_draws_the_same_digit_at_the_same_place(digits):
    scan = photo(digits, "scan", 2)
    for condition in ("grey_ink", "blue_ink", "uneven_light", "specks", "ruled"):
        other = photo(digits, condition, 2)
        assert other.photo.boxes == scan.photo.boxes, condition


def test_scan_is_dark_ink_on_even_white_paper(digits):
    item = photo(digits, "scan")
    g = grey(item)
    assert g[paper_mask(item)].min() > 0.9
    assert g[ink_mask(item)].mean() < 0.15
    assert "exif" not in Image.open(io.BytesIO(item.photo.jpeg)).info


@pytest.mark.parametrize("index", [0, 1, 2])
def test_exif_stores_the_scan_turned_with_the_orientation_tag(digits, index):
    scan, turned = photo(digits, "scan", index), photo(digits, "exif", index)
    tag = (6, 8, 3)[index]
    # Before the JPEG, the upright pixels are the scan's exactly.
    assert np.array_equal(scan.photo.upright, turned.photo.upright)
    stored = Image.open(io.BytesIO(turned.photo.jpeg))
    assert stored.getexif()[paper.ORIENTATION_TAG] == tag
    pixels = np.asarray(stored.convert("RGB"), dtype=np.float32)
    upright = scan.photo.upright.astype(np.float32)
    # 6: the upright turned 90 degrees counter-clockwise; 8: clockwise; 3: half a turn.
    expected = {6: np.rot90(upright, 1), 8: np.rot90(upright, -1), 3: np.rot90(upright, 2)}[tag]
    assert pixels.shape == expected.shape
    assert np.abs(pixels - expected).mean() < 3.0
    # A reader that applies the tag gets the upright digit back.
    shown = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"), dtype=np.float32)
    assert shown.shape == upright.shape
    assert np.abs(shown - upright).mean() < 3.0
    # The stored pixels really are turned, not the upright picture with a tag on it.
    if tag != 3:
        assert pixels.shape[:2] == upright.shape[1::-1]
    else:
        assert np.abs(pixels - upright).mean() > 3.0


def test_illumination_falls_to_the_given_brightness_across_the_frame():
    light = paper.illumination((160, 120), 0.5, 0.0)
    assert light[:, 0].mean() == pytest.approx(1.0, abs=0.01)
    assert light[:, -1].mean() == pytest.approx(0.5, abs=0.01)
    shaded = paper.illumination((160, 120), 1.0, 0.0, shadow_depth=0.3, shadow_at=0.5)
    assert shaded[:, 0].mean() == pytest.approx(1.0, abs=0.02)
    assert shaded[:, -1].mean() == pytest.approx(0.7, abs=0.02)


@pytest.mark.parametrize("index", range(6))
def test_uneven_light_leaves_one_side_at_about_half_brightness(digits, index):
    item = photo(digits, "uneven_light", index)
    p = item.recipe
    assert 0.45 <= p.light_low <= 0.55 and p.shadow > 0
    sheet = grey(item)[paper_mask(item)]
    ratio = np.quantile(sheet, 0.02) / np.quantile(sheet, 0.98)
    # Darkest paper / brightest paper: the gradient's low end (reached at the frame's far
    # side, up to 20 degrees off an axis), deeper where the shadow falls.
    assert p.light_low * (1 - p.shadow) - 0.08 <= ratio <= p.light_low + 0.12


def test_colour_casts_tint_the_paper(digits):
    warm = photo(digits, "warm_light").photo.upright[..., :3].reshape(-1, 3).mean(axis=0)
    cool = photo(digits, "cool_light").photo.upright[..., :3].reshape(-1, 3).mean(axis=0)
    assert warm[0] > warm[2] + 50
    assert cool[2] > cool[0] + 30


def test_grain_adds_texture_and_noise_to_the_paper(digits):
    scan, grained = photo(digits, "scan"), photo(digits, "grain")
    assert grey(scan)[paper_mask(scan)].std() < 0.01
    assert grey(grained)[paper_mask(grained)].std() > 0.03


@pytest.mark.parametrize(
    ("condition", "check"),
    [
        ("grey_ink", lambda rgb: 0.35 < rgb.mean() / 255 < 0.65 and np.ptp(rgb) < 20),
        ("blue_ink", lambda rgb: rgb[2] > rgb[0] + 60 and rgb[2] > rgb[1] + 30),
        ("red_ink", lambda rgb: rgb[0] > rgb[1] + 60 and rgb[0] > rgb[2] + 60),
    ],
)
def test_ink_colours(digits, condition, check):
    item = photo(digits, condition)
    rgb = item.photo.upright[ink_mask(item)].astype(np.float32).mean(axis=0)
    assert check(rgb), rgb


def test_pencil_is_lighter_grainy_ink_on_grey_paper(digits):
    item = photo(digits, "pencil")
    g = grey(item)
    assert 0.6 < g[paper_mask(item)].mean() < 0.82
    ink = g[ink_mask(item)]
    assert 0.2 < ink.mean() < 0.55


def test_coloured_paper_is_coloured(digits):
    for index in range(5):
        item = photo(digits, "coloured_paper", index)
        rgb = item.photo.upright[paper_mask(item)].astype(np.float32).mean(axis=0)
        assert np.ptp(rgb) > 25, rgb


def test_rotation_turns_and_moves_the_digit(digits):
    for index in range(4):
        scan, turned = photo(digits, "scan", index), photo(digits, "rotation", index)
        assert abs(turned.recipe.rotation) <= 15
        assert turned.recipe.perspective > 0
        assert turned.photo.boxes != scan.photo.boxes


def sharpness(item: SinglePhoto) -> float:
    g = grey(item)
    return float(np.abs(np.diff(g, axis=1)).max())


def test_blur_softens_the_strokes(digits):
    for index in (0, 1):  # defocus, motion
        assert sharpness(photo(digits, "blur", index)) < 0.7 * sharpness(
            photo(digits, "scan", index)
        )


def test_jpeg_condition_is_a_low_quality_jpeg(digits):
    scan, low = photo(digits, "scan"), photo(digits, "jpeg")
    assert low.recipe.jpeg_quality <= 20
    assert len(low.photo.jpeg) < len(scan.photo.jpeg)
    tables = Image.open(io.BytesIO(low.photo.jpeg)).quantization
    reference = Image.open(io.BytesIO(scan.photo.jpeg)).quantization
    assert np.mean(tables[0]) > 3 * np.mean(reference[0])


def test_specks_land_on_the_paper_but_never_on_the_digit(digits):
    scan, specked = photo(digits, "scan"), photo(digits, "specks")
    box = scan.photo.boxes[0]
    inside = (slice(box["y"], box["y"] + box["height"]), slice(box["x"], box["x"] + box["width"]))
    assert np.array_equal(scan.photo.upright[inside], specked.photo.upright[inside])
    assert (grey(scan)[paper_mask(scan, margin=0.0)] < 0.7).sum() == 0
    assert (grey(specked)[paper_mask(specked, margin=0.0)] < 0.7).sum() >= 5


def bluish(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 2].astype(np.float32) - rgb[..., 0] > 25


def test_ruled_paper_has_horizontal_lines_and_squared_paper_a_grid(digits):
    ruled = photo(digits, "ruled").photo.upright
    rows = bluish(ruled).mean(axis=1) > 0.5
    assert rows.sum() >= 2
    assert (bluish(ruled).mean(axis=0) > 0.5).sum() == 0
    squared = photo(digits, "squared").photo.upright
    assert (bluish(squared).mean(axis=1) > 0.5).sum() >= 3
    assert (bluish(squared).mean(axis=0) > 0.5).sum() >= 3


def test_sheet_edge_shows_the_dark_table_beyond_the_paper(digits):
    for index in range(4):
        item = photo(digits, "sheet_edge", index)
        g = grey(item)
        for side, _depth, _tilt in item.recipe.edges:
            strip = {"left": g[:, :2], "right": g[:, -2:], "top": g[:2], "bottom": g[-2:]}[side]
            assert strip.mean() < 0.45, (side, strip.mean())


def test_phone_combines_conditions_and_turns_every_second_photo(digits):
    upright, turned = photo(digits, "phone", 0), photo(digits, "phone", 1)
    for item in (upright, turned):
        r = item.recipe
        assert r.light_low < 0.6 and r.shadow > 0 and r.cast != (1.0, 1.0, 1.0)
        assert r.grain > 0 and r.noise > 0 and r.defocus > 0 and r.jpeg_quality <= 80
    assert upright.recipe.orientation == 1
    assert turned.recipe.orientation == 6
    assert Image.open(io.BytesIO(turned.photo.jpeg)).getexif()[paper.ORIENTATION_TAG] == 6


def test_sizes_are_phone_photo_sizes(digits):
    sizes = {photo(digits, "scan", i).photo.upright.shape[1::-1] for i in range(4)}
    assert sizes == {(160, 120), (320, 240), (640, 480)}


def _axis_degrees(item: SinglePhoto) -> float:
    """Direction of the ink's long axis, counter-clockwise as seen, in (-90, 90]."""
    ys, xs = np.nonzero(grey(item) < 0.5)
    x, y = xs - xs.mean(), -(ys - ys.mean())  # y up, as seen
    angle = 0.5 * np.degrees(np.arctan2(2 * np.mean(x * y), np.mean(x * x) - np.mean(y * y)))
    return float(angle)


def test_tilt_turns_the_digit_45_to_65_degrees_either_way(digits):
    angles = [photo(digits, "tilt", i).recipe.rotation for i in range(12)]
    assert all(45 <= abs(a) <= 65 for a in angles)
    assert min(angles) < 0 < max(angles)
    # Item 1 is a "1" (a long thin stroke): its ink turns by the drawn angle.
    scan, tilted = photo(digits, "scan", 1), photo(digits, "tilt", 1)
    assert scan.glyph.label == 1
    turned = (_axis_degrees(tilted) - _axis_degrees(scan) + 90) % 180 - 90
    assert turned == pytest.approx(tilted.recipe.rotation, abs=5)


def test_far_away_draws_the_digit_6_to_8_pixels_tall_in_every_frame(digits):
    items = [photo(digits, "far_away", i) for i in range(8)]
    assert {item.size for item in items} == {(160, 120), (320, 240), (640, 480)}
    for item in items:
        assert 6 <= item.recipe.digit_pixels <= 8
        # The ink box (coverage above one half) is about the drawn height.
        assert 4 <= item.photo.boxes[0]["height"] <= 9
        assert item.photo.boxes[0]["width"] >= 1
    # The same digit as the scan, only smaller.
    assert items[1].glyph.mnist_index == photo(digits, "scan", 1).glyph.mnist_index
