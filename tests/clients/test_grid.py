"""The grid PNG: drawn from arrays, and end to end from a live server."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from clients.__main__ import main
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


def _predict(model_path: Path, images: np.ndarray, sigmoid: bool) -> list[str]:
    """The label each image gets, computed here with onnxruntime, not by the client."""
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"images": images.astype(np.float32) / np.float32(255)})[0]
    if sigmoid:
        return ["1" if p > 0.5 else "not 1" for p in out[:, 0]]
    return [str(i) for i in out.argmax(axis=1)]


@pytest.mark.parametrize(
    ("model", "sigmoid", "one_by_one"), [("cnn", False, False), ("one_vs_rest", True, True)]
)
def test_grid_from_server(server, repo, tmp_path, capsys, model, sigmoid, one_by_one):
    images = synthetic_digits(60, seed=5)
    predicted = _predict(repo / model / "1" / "model.onnx", images[:50], sigmoid)
    # Every odd image gets a true digit the model did not predict: 25 right, 25 wrong.
    digits = []
    for i, label in enumerate(predicted):
        if sigmoid:
            right = 1 if label == "1" else 0
            digits.append(right if i % 2 == 0 else 1 - right)
        else:
            digits.append(int(label) if i % 2 == 0 else (int(label) + 1) % 10)
    data = tmp_path / "mnist.npz"
    np.savez(
        data,
        x_train=images[:10],
        y_train=np.zeros(10, dtype=np.uint8),
        x_test=images[:50],
        y_test=np.array(digits, dtype=np.uint8),
    )
    out = tmp_path / "grid.png"
    argv = ["grid", "--server", server.address, "--model", model, "--out", str(out)]
    argv += ["--data", str(data), "--wait", "5"] + (["--one-by-one"] if one_by_one else [])

    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "25/50 correct" in stdout and "CPUExecutionProvider" in stdout

    with Image.open(out) as png:
        width, height = png.size
    assert 500 <= width <= 800 and 1200 <= height <= 1800
    found = find_tiles(out)
    assert len(found) == 50
    assert len({t.top for t in found}) == 10 and len({t.left for t in found}) == 5
    assert [t.red_band for t in found] == [i % 2 == 1 for i in range(50)]
