"""``digits-client grid`` end to end from a live server."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from clients.__main__ import main
from clients.load import synthetic_digits
from tests.clients.png_analysis import find_tiles


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
