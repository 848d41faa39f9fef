"""The grid PNG: drawn from arrays, and end to end from a live server."""

import pytest
from PIL import Image

from clients.grid import draw_grid, grid_title, tile_text
from clients.load import synthetic_digits
from tests.clients.png_analysis import find_tiles


def test_tile_text_marks_only_mistakes():
    assert tile_text("7", "7") == ("7", False)
    assert tile_text("3", "5") == ("3(5)", True)
    assert tile_text("not 1", "1") == ("not 1(1)", True)
    assert tile_text("4", None) == ("4", False)


def test_draw_grid_geometry_matches_the_pixels(tmp_path):
    images = synthetic_digits(50, seed=1)
    truth = [str(i % 10) for i in range(50)]
    wrong = {0, 7, 21, 49}
    predicted = [str((int(t) + 1) % 10) if i in wrong else t for i, t in enumerate(truth)]
    out = tmp_path / "grid.png"
    layout = draw_grid(images, predicted, truth, grid_title("m", "1", "CPU", 46, 50), out)

    with Image.open(out) as png:
        assert png.size == (layout.width, layout.height)
    found = find_tiles(out)
    assert len(found) == 50 == len(layout.tiles)
    assert [t.red_band for t in found] == [i in wrong for i in range(50)]
    for tile, seen in zip(layout.tiles, found, strict=True):
        # The layout the module reports is where the pixels really are.
        assert abs(tile.image.top - seen.top) <= 2 and abs(tile.image.left - seen.left) <= 2
        assert tile.band.bottom == tile.image.top and tile.wrong == seen.red_band
    assert layout.tiles[7].text == "8(7)"


def test_draw_grid_refuses_mismatched_labels(tmp_path):
    with pytest.raises(ValueError):
        draw_grid(synthetic_digits(3), ["1", "2"], None, "t", tmp_path / "x.png")
