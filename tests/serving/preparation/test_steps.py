"""Each preparation step alone, on small images made here (no server, no model)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from examples import render
from serving.errors import InvalidInput
from serving.preparation import decode, digits, ink, light, mnist
from serving.preparation.pipeline import read_decoded


def bar_digit(height: int = 60, width: int = 40) -> np.ndarray:
    """Ink coverage of a 1-like bar, off-centre."""
    page = np.zeros((height, width), np.float32)
    page[10:50, 18:24] = 1.0
    return page


def test_orientation_is_applied_and_the_full_size_follows():
    rgb = np.full((30, 80, 3), 255, np.uint8)
    rgb[5:10, 60:75] = 0  # a mark at the top right of the upright image
    turned = decode.decode_rgb(render.encode(rgb, "PNG", orientation=6))
    assert turned.rgb.shape[:2] == (30, 80) and turned.full_size == (80, 30)
    assert turned.rgb[7, 65].max() < 0.1 and turned.rgb[22, 10].min() > 0.9


def test_large_images_are_reduced_and_boxes_scale_back():
    big = np.full((1500, 3000, 3), 250, np.uint8)
    decoded = decode.decode_rgb(render.encode(big, "JPEG"))
    assert max(decoded.rgb.shape[:2]) <= decode.WORKING_SIDE
    assert decoded.full_size == (3000, 1500) and decoded.scale[0] > 1


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"hello, this is text", "cannot decode: not a readable image"),
        (b'{"images": []}', "looks like JSON"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "damaged"),
    ],
)
def test_undecodable_bytes_say_what_they_are_and_what_is_accepted(data, words):
    with pytest.raises(InvalidInput) as caught:
        decode.decode_rgb(data)
    message = str(caught.value)
    assert words in message and "PNG or JPEG" in message and "BytesIO" not in message


@pytest.mark.parametrize(
    "look", [render.BLUE_INK, render.RED_INK, render.PENCIL_ON_GREY, render.UNEVEN]
)
def test_coloured_ink_is_darker_than_paper_in_grey(look):
    rgb = render.photo(bar_digit(), look, np.random.default_rng(0)).astype(np.float32) / 255
    grey = light.grey(light.light_paper(rgb))
    assert grey[30, 21] < 0.75 * np.median(grey)


def test_flattening_removes_a_light_gradient_but_keeps_the_ink():
    page = np.zeros((120, 160), np.float32)
    page[30:90, 76:84] = 1.0
    rgb = render.photo(page, render.Look(dark_side=0.4), np.random.default_rng(0)) / 255.0
    grey = light.grey(rgb.astype(np.float32))
    flat = light.flatten(grey)
    # The dim left side is at 40% of the right side's light; both come out as paper.
    assert grey[:, :10].mean() < 0.5 * grey[:, -10:].mean()
    assert np.concatenate([flat[:, :10].ravel(), flat[:, -10:].ravel()]).max() < 0.1
    assert flat[60, 80] > 0.8


def test_light_on_dark_is_turned_into_dark_on_light():
    dark = np.zeros((40, 40), np.float32)
    dark[10:30, 18:22] = 1.0
    assert light.light_paper(dark)[20, 20] == 0.0 and light.light_paper(dark)[0, 0] == 1.0


def test_otsu_finds_a_thin_digit_on_a_big_grainy_sheet():
    rng = np.random.default_rng(1)
    sheet = np.clip(rng.normal(0.03, 0.02, (300, 400)), 0, 1).astype(np.float32)
    sheet[100:160, 200:204] = 0.6  # 1% of the pixels
    mask = ink.threshold(sheet)
    assert mask[100:160, 200:204].all() and mask.sum() < 300


def test_blank_paper_has_no_digit():
    rng = np.random.default_rng(2)
    with pytest.raises(InvalidInput, match="no digit found"):
        ink.threshold(np.clip(rng.normal(0.03, 0.02, (100, 100)), 0, 1).astype(np.float32))


def test_ruled_lines_go_and_a_crossing_stroke_stays():
    mask = np.zeros((120, 160), bool)
    mask[40, :] = mask[80, :] = True  # ruled lines
    mask[20:100, 70:78] = True  # a stroke crossing both
    cleaned = ink.remove_lines(mask)
    assert not cleaned[40, :60].any() and not cleaned[80, 100:].any()
    assert cleaned[20:100, 70:78].all()


def test_a_tall_thick_stroke_is_not_a_line():
    mask = np.zeros((48, 30), bool)
    mask[:, 10:19] = True  # a 1 filling a small scan from top to bottom
    assert ink.remove_lines(mask).sum() == mask.sum()


def parts_of(mask: np.ndarray):
    return ink.components(mask)


def test_specks_and_the_sheet_edge_do_not_widen_the_crop():
    mask = np.zeros((120, 160), bool)
    mask[30:90, 70:80] = True  # the digit
    mask[:, :6] = True  # the table at the sheet's edge
    mask[10, 140] = mask[110, 20] = True  # specks
    labels, parts = parts_of(mask)
    region = digits.choose_digit(parts, labels.shape)
    assert (region.top, region.left, region.bottom, region.right) == (30, 70, 90, 80)


def test_a_digit_filling_the_image_is_still_chosen():
    mask = np.zeros((48, 30), bool)
    mask[:, 8:20] = True
    mask[20:24, 24:27] = True  # a small inside bit
    labels, parts = parts_of(mask)
    region = digits.choose_digit(parts, labels.shape)
    assert (region.top, region.bottom) == (0, 48)


def test_segment_orders_lines_and_joins_a_detached_bar():
    mask = np.zeros((200, 200), bool)
    mask[20:60, 120:130] = True  # line 0, right
    mask[20:60, 30:40] = True  # line 0, left
    mask[100:104, 60:90] = True  # a 5's bar above its body
    mask[110:160, 60:70] = True  # line 1: the body
    labels, parts = parts_of(mask)
    regions = digits.segment(parts, labels)
    assert [(r.line, r.left) for r in regions] == [(0, 30), (0, 120), (1, 60)]
    assert regions[2].top == 100 and regions[2].bottom == 160


def test_touching_digits_are_cut_at_the_join():
    image = Image.new("L", (160, 80), 0)
    pen = ImageDraw.Draw(image)
    pen.ellipse([(10, 10), (55, 70)], outline=255, width=7)  # a 0
    pen.ellipse([(67, 10), (112, 70)], outline=255, width=7)  # another 0
    pen.line([(54, 40), (68, 40)], fill=255, width=5)  # the pen ran on from one to the next
    labels, parts = parts_of(np.asarray(image) > 0)
    assert len(parts) == 1
    regions = digits.segment(parts, labels)
    assert len(regions) == 2 and 54 <= regions[1].left <= 68


def test_a_wide_zero_is_not_cut():
    image = Image.new("L", (160, 80), 0)
    ImageDraw.Draw(image).ellipse([(10, 10), (100, 70)], outline=255, width=7)
    labels, parts = parts_of(np.asarray(image) > 0)
    assert len(digits.segment(parts, labels)) == 1


def test_mnist_field_is_a_20_box_centred_by_mass():
    field = mnist.to_field(bar_digit()[5:55, 10:30])
    rows, cols = np.nonzero(field > 0.05)
    assert np.ptp(rows) + 1 <= 21 and np.ptp(cols) + 1 <= 21
    total = field.sum()
    centre = (np.indices(field.shape) * field).sum(axis=(1, 2)) / total
    assert np.all(np.abs(centre - 13.5) < 1)


def test_read_boxes_are_in_full_size_pixels():
    page, boxes = render.place([render.ink_of(np.eye(28, dtype=np.uint8) * 255, 400)], (3000, 800))
    rgb = render.photo(page, render.SCAN, np.random.default_rng(3))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    reading = read_decoded(decode.decode_rgb(buffer.getvalue()))
    (x, y, w, h), (tx, ty, tw, th) = reading.boxes[0], boxes[0]
    assert abs(x - tx) <= 8 and abs(y - ty) <= 8 and abs(w - tw) <= 12 and abs(h - th) <= 12
